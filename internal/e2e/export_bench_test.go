package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/api"
	"github.com/fieldsync/fieldsync/internal/domain"
	"github.com/fieldsync/fieldsync/internal/forms"
	"github.com/fieldsync/fieldsync/internal/httpapi"
	"github.com/fieldsync/fieldsync/internal/identity"
	"github.com/fieldsync/fieldsync/internal/records"
	"github.com/fieldsync/fieldsync/internal/store/sqlite"
)

// BenchmarkExport exports 20,000 and 200,000 perception-survey records
// (~600 bytes of answers each, a repeat group among them) from SQLite as csv
// and as xlsx, over HTTP, and reports records/s (wall clock) and the server's
// peak RSS. The server runs in a process of its own (this test binary,
// re-run as TestExportBenchServer), started fresh for each case, so its
// peak RSS (VmHWM) is the export's alone and not the seeding's:
//
//	go test -run x -bench Export -benchtime 1x -timeout 30m ./internal/e2e/
//
// Linux only (the RSS is read from /proc).
func BenchmarkExport(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc")
	}
	dir := b.TempDir()
	for _, n := range []int{20_000, 200_000} {
		path := filepath.Join(dir, fmt.Sprintf("export-%d.db", n))
		seeded := false // seeded by the first case that runs (-bench may pick one)
		for _, format := range []string{"csv", "xlsx"} {
			b.Run(fmt.Sprintf("%s/%d", format, n), func(b *testing.B) {
				if !seeded {
					seedExportDB(b, path, n)
					seeded = true
				}
				srv := startExportServer(b, path)
				cl, err := api.NewClient(srv.url, api.WithHTTPClient(&http.Client{}))
				if err != nil {
					b.Fatal(err)
				}
				var tok api.TokenResponse
				if err := cl.Do(context.Background(), http.MethodPost, "/v1/auth/token", api.TokenRequest{Username: "admin", Password: adminPassword}, &tok); err != nil {
					b.Fatal(err)
				}
				cl.SetToken(tok.AccessToken)
				idle := srv.rss("VmRSS")
				var bytes int64
				cpu0 := srv.cpu()
				start := time.Now()
				for b.Loop() {
					info, err := cl.Export(context.Background(), "bench", "perception", api.ExportQuery{Format: format}, io.Discard)
					if err != nil {
						b.Fatal(err)
					}
					if info.Records != int64(n) {
						b.Fatalf("exported %d records of %d", info.Records, n)
					}
					bytes += info.Bytes
				}
				elapsed := time.Since(start)
				b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "records/s")
				// Records per CPU second of the server: what a shared, busy
				// machine distorts least (wall time counts the neighbours).
				if cpu := srv.cpu() - cpu0; cpu > 0 {
					b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "records/cpu-s")
				}
				b.ReportMetric(float64(bytes)/float64(b.N)/(1<<20), "MiB/export")
				b.ReportMetric(srv.rss("VmHWM"), "peak-RSS-MiB")
				b.ReportMetric(idle, "idle-RSS-MiB")
			})
		}
	}
}

// seedExportDB writes n survey records of form perception in project bench
// straight into a new SQLite file, with the form published and the admin
// bootstrapped.
func seedExportDB(b *testing.B, path string, n int) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ids, err := identity.New(ctx, identity.Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ids.Bootstrap(ctx, adminPassword); err != nil {
		b.Fatal(err)
	}
	if err := st.CreateProject(ctx, domain.Project{ID: "bench", Title: "Bench", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	fs := forms.NewService(forms.ServiceConfig{Store: st})
	if _, _, err := fs.PutVersion(ctx, "bench", "perception", "1", surveyForm(b)); err != nil {
		b.Fatal(err)
	}
	if _, err := fs.Publish(ctx, "bench", "perception", "1"); err != nil {
		b.Fatal(err)
	}
	for from := 0; from < n; from += benchBatch {
		res, err := st.WriteRecords(ctx, surveyWrites(b, "bench", from, min(benchBatch, n-from), "device:bench"))
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r != nil {
				b.Fatal(r)
			}
		}
	}
}

// exportServer is a fieldsync server in a child process.
type exportServer struct {
	cmd *exec.Cmd
	url string
}

// rss reads a memory figure of the child (VmRSS now, VmHWM its peak) in MiB.
func (s *exportServer) rss(field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

// cpu is the CPU time (user and system) the child has used so far.
func (s *exportServer) cpu() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces) start at
	// state, field 3; utime and stime are fields 14 and 15, in clock ticks.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux this runs on.
const clockTicks = 100

// startExportServer runs this test binary as TestExportBenchServer on the
// SQLite file, and stops it when b ends.
func startExportServer(b *testing.B, path string) *exportServer {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestExportBenchServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FIELDSYNC_EXPORT_BENCH_DB="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close() // the child exits when its stdin closes
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return &exportServer{cmd: cmd, url: "http://" + addr}
		}
	}
	b.Fatalf("the export server did not start: %v", sc.Err())
	return nil
}

// TestExportBenchServer is the server process of BenchmarkExport: wired as
// cmd/fieldsync wires it, on the SQLite file FIELDSYNC_EXPORT_BENCH_DB, until
// its standard input closes. Without that variable it does nothing.
// FIELDSYNC_EXPORT_BENCH_CPUPROFILE=FILE writes the server's CPU profile.
func TestExportBenchServer(t *testing.T) {
	path := os.Getenv("FIELDSYNC_EXPORT_BENCH_DB")
	if path == "" {
		t.Skip("the server process of BenchmarkExport")
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	ids, err := identity.New(ctx, identity.Config{Store: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	fs := forms.NewService(forms.ServiceConfig{Store: st})
	recs := records.New(records.Config{Store: st, Forms: records.FormsOf(fs), Logger: log})
	h, err := httpapi.New(httpapi.Config{Store: st, Logger: log, Authenticator: ids, Identity: ids, Forms: fs, Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("FIELDSYNC_EXPORT_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("ADDR %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Close()
}
