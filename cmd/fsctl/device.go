package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/fieldsync/fieldsync/api"
)

// deviceVerbs is fsctl device add|revoke|list.
var deviceVerbs = map[string]verb{
	"add":    {"add PROJECT NAME [--public-url URL]: register a tablet and print its enrollment code and QR code", runDeviceAdd},
	"revoke": {"revoke PROJECT DEVICE_ID: a lost or stolen tablet can no longer sync", runDeviceRevoke},
	"list":   {"list PROJECT [--json]: the project's tablets with their state and last sync (managers)", runDeviceList},
}

// enrollmentQR is what the QR code of fsctl device add holds, for the
// collector app to scan: where to enroll and with which code.
type enrollmentQR struct {
	Server string `json:"server"`
	Code   string `json:"code"`
}

// runDeviceAdd is fsctl device add PROJECT NAME (managers): it registers a
// tablet and prints its one-use enrollment code, the code's expiry, and a QR
// code of {"server":URL,"code":CODE} for the tablet to scan.
func runDeviceAdd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "device add", "PROJECT NAME [--public-url URL] [--invert]")
	publicURL := fs.String("public-url", "", "the server URL the tablets use, when it differs from the one fsctl uses")
	invert := fs.Bool("invert", false, "invert the QR code's colours (for terminals with dark text on a light background)")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	server := s.cfg.Server
	if *publicURL != "" {
		if err := checkServerURL(*publicURL, true); err != nil {
			return err
		}
		server = strings.TrimRight(*publicURL, "/")
	}
	var d api.CreateDeviceResponse
	err = s.do(ctx, func(c *api.Client) error {
		d, err = c.CreateDevice(ctx, pos[0], pos[1])
		return err
	})
	if err != nil {
		return err
	}
	payload, err := json.Marshal(enrollmentQR{Server: server, Code: d.EnrollmentCode})
	if err != nil {
		return err
	}
	qr, err := qrcode.New(string(payload), qrcode.Medium)
	if err != nil {
		return fmt.Errorf("making the QR code: %w", err)
	}
	left := d.ExpiresAt.Sub(e.clock())
	fmt.Fprintf(e.stdout, "Device %q added to project %s.\n\n", pos[1], pos[0])
	fmt.Fprintf(e.stdout, "  device id:        %s\n", d.DeviceID)
	fmt.Fprintf(e.stdout, "  enrollment code:  %s\n", d.EnrollmentCode)
	fmt.Fprintf(e.stdout, "  server:           %s\n", server)
	fmt.Fprintf(e.stdout, "  expires:          %s (in %s; the code works once)\n\n",
		d.ExpiresAt.Local().Format("2006-01-02 15:04 MST"), roughly(left))
	fmt.Fprintln(e.stdout, "Scan this with the collector app on the tablet:")
	fmt.Fprintln(e.stdout)
	fmt.Fprint(e.stdout, qr.ToSmallString(*invert))
	fmt.Fprintln(e.stdout)
	fmt.Fprintf(e.stdout, "The code is shown only now. Keep the device id to revoke the tablet:\n  fsctl device revoke %s %s\n", pos[0], d.DeviceID)
	return nil
}

// runDeviceRevoke is fsctl device revoke PROJECT DEVICE_ID (managers).
func runDeviceRevoke(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "device revoke", "PROJECT DEVICE_ID")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	if err := s.do(ctx, func(c *api.Client) error { return c.RevokeDevice(ctx, pos[0], pos[1]) }); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Device %s of %s is revoked; it can no longer sync.\n", pos[1], pos[0])
	return nil
}

// roughly words a duration for people: "7 days", "5 hours", "20 minutes".
func roughly(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Round(24*time.Hour)/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Round(time.Hour)/time.Hour))
	default:
		return fmt.Sprintf("%d minutes", int(d.Round(time.Minute)/time.Minute))
	}
}
