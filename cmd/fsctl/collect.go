package main

import (
	"context"
	"fmt"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/fieldsync/fieldsync/api"
)

func init() {
	deviceVerbs["collect"] = verb{"collect PROJECT DEVICE_ID [--png FILE] [--invert]: a fresh ODK Collect key for the tablet: print the server URL and Collect's settings QR code (managers)", runDeviceCollect}
}

// runDeviceCollect is fsctl device collect PROJECT DEVICE_ID: it makes a new
// OpenRosa key for the device (the earlier one stops working) and prints the
// server URL and the QR code that ODK Collect scans in "Configure with QR
// code"; --png writes the QR code to a file instead of the terminal, for
// printing.
func runDeviceCollect(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "device collect", "PROJECT DEVICE_ID [--png FILE] [--invert]")
	png := fs.String("png", "", "write the QR code as a PNG image to this file")
	invert := fs.Bool("invert", false, "invert the QR code's colours (for terminals with dark text on a light background)")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	s, err := e.session(ctx)
	if err != nil {
		return err
	}
	var k api.OpenRosaKeyResponse
	err = s.do(ctx, func(c *api.Client) error {
		k, err = c.CreateOpenRosaKey(ctx, pos[0], pos[1])
		return err
	})
	if err != nil {
		return err
	}
	qr, err := qrcode.New(k.QR, qrcode.Medium)
	if err != nil {
		return fmt.Errorf("making the QR code: %w", err)
	}
	fmt.Fprintf(e.stdout, "ODK Collect key made for device %s of project %s (any earlier key stops working).\n\n", pos[1], pos[0])
	fmt.Fprintf(e.stdout, "  server URL:  %s\n\n", k.ServerURL)
	if *png != "" {
		if err := qr.WriteFile(512, *png); err != nil {
			return fmt.Errorf("writing %s: %w", *png, err)
		}
		fmt.Fprintf(e.stdout, "The QR code is in %s. In Collect: Configure with QR code → scan it.\n", *png)
	} else {
		fmt.Fprintln(e.stdout, "In ODK Collect: Add project → Configure with QR code → scan this:")
		fmt.Fprintln(e.stdout)
		fmt.Fprint(e.stdout, qr.ToSmallString(*invert))
		fmt.Fprintln(e.stdout)
	}
	fmt.Fprintf(e.stdout, "The key is shown only now and acts as the tablet. Revoking the device stops it:\n  fsctl device revoke %s %s\n", pos[0], pos[1])
	return nil
}
