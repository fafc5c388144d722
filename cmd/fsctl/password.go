package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

// Passwords, in this order of preference:
//
//  1. the environment variable the command names (FSCTL_PASSWORD for login,
//     FSCTL_NEW_PASSWORD for user add), for scripts. Other processes of the same
//     user can read a process's environment, and a variable set on the command
//     line lands in the shell history: prefer the prompt by hand.
//  2. a prompt on the terminal, with echo turned off. golang.org/x/term is not a
//     dependency of this module, so echo is switched with stty(1), which every
//     Unix-like system has. Where it is missing (Windows), fsctl refuses to read
//     a password visibly and asks for 1 or 3 instead.
//  3. one line of standard input when it is not a terminal
//     (printf '%s\n' "$PW" | fsctl login …).

// errNoPassword is answered for an empty password.
var errNoPassword = errors.New("no password given")

// readPassword reads a password as described above. confirm asks twice on a
// terminal (a new password typed blind).
func (e *env) readPassword(envVar, prompt string, confirm bool) (string, error) {
	if v := e.getenv(envVar); v != "" {
		return v, nil
	}
	if f, ok := e.stdin.(*os.File); ok && isTerminal(f) {
		pw, err := readHidden(f, e.stderr, prompt)
		if err != nil {
			return "", fmt.Errorf("%w; set %s or pipe the password into standard input", err, envVar)
		}
		if confirm {
			again, err := readHidden(f, e.stderr, "Repeat it: ")
			if err != nil {
				return "", err
			}
			if again != pw {
				return "", errors.New("the two passwords differ")
			}
		}
		if pw == "" {
			return "", errNoPassword
		}
		return pw, nil
	}
	line, err := e.stdinLine()
	if err != nil {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	if line == "" {
		return "", errNoPassword
	}
	return line, nil
}

// stdinLine reads one line of standard input without its line ending. Only
// the bytes of that line are consumed, so a second call reads the next line.
func (e *env) stdinLine() (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := e.stdin.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			b.WriteByte(buf[0])
		}
		if errors.Is(err, io.EOF) {
			if b.Len() == 0 {
				return "", errNoPassword
			}
			break
		}
		if err != nil {
			return "", err
		}
	}
	return strings.TrimSuffix(b.String(), "\r"), nil
}

// isTerminal reports whether f is a character device (a terminal, or
// /dev/null, where stty then fails and says so).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// readHidden prompts on w and reads one line from the terminal f with echo off.
// Echo comes back however the read ends, Ctrl-C included.
func readHidden(f *os.File, w io.Writer, prompt string) (string, error) {
	if err := stty(f, "-echo"); err != nil {
		return "", errors.New("cannot turn off the echo of the terminal to read a password")
	}
	restore := func() { _ = stty(f, "echo") }
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
			restore()
			fmt.Fprintln(w)
			os.Exit(130)
		case <-done:
		}
	}()
	defer func() {
		close(done)
		signal.Stop(sig)
		restore()
		fmt.Fprintln(w) // the newline the user typed was not echoed
	}()
	fmt.Fprint(w, prompt)
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// stty runs stty(1) on the terminal f.
func stty(f *os.File, arg string) error {
	cmd := exec.Command("stty", arg)
	cmd.Stdin = f
	return cmd.Run()
}
