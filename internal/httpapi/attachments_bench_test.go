package httpapi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/api"
)

// genReader streams n pseudo-random bytes that sniff as JPEG, without ever
// holding them: the uploads of the benchmarks below come from it.
type genReader struct {
	rng  *rand.PCG
	left int64
	head bool
}

func newGen(n int64) *genReader { return &genReader{rng: rand.NewPCG(42, 42), left: n} }

func (g *genReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	for i := 0; i < len(p); i += 8 {
		v := g.rng.Uint64()
		for j := 0; j < 8 && i+j < len(p); j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	if !g.head {
		g.head = true
		copy(p, "\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	}
	g.left -= int64(len(p))
	return len(p), nil
}

func genSHA(n int64) string {
	h := sha256.New()
	_, _ = io.CopyBuffer(h, newGen(n), make([]byte, 1<<20))
	return hex.EncodeToString(h.Sum(nil))
}

// rssBytes is the process's resident set now (Linux).
func rssBytes() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkAttachmentPut20MB uploads a 20 MB photo with PUT over loopback
// (SQLite store: files under the data directory); MB/s is the throughput.
func BenchmarkAttachmentPut20MB(b *testing.B) {
	const size = 20_000_000
	e := newAttEnvB(b)
	sum := genSHA(size)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		id := uuid.NewString()
		e.pushB(b, id, api.Attachment{Name: "site.jpg", SHA256: sum, Size: size, ContentType: "image/jpeg"})
		b.StartTimer()
		e.putB(b, id, "site.jpg", newGen(size))
		b.StopTimer()
		// Each round stores the bytes anew: drop the file so the next PUT
		// writes it rather than finding it held.
		if _, err := e.ts.srv.store.CollectBlobs(b.Context(), time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkAttachmentRSS runs 20 uploads at once, of 20 MB and of 100 MB
// each, and reports the process's peak RSS above its RSS before: streaming
// keeps it flat whatever the file size.
func BenchmarkAttachmentRSS(b *testing.B) {
	for _, size := range []int64{20_000_000, 100_000_000} {
		b.Run(fmt.Sprintf("20x%dMB", size/1_000_000), func(b *testing.B) {
			e := newAttEnvB(b)
			sum := genSHA(size)
			var peakOver int64
			for range b.N {
				ids := make([]string, 20)
				for i := range ids {
					ids[i] = uuid.NewString()
					e.pushB(b, ids[i], api.Attachment{Name: "site.jpg", SHA256: sum, Size: size, ContentType: "image/jpeg"})
				}
				base := rssBytes()
				var peak atomic.Int64
				stop := make(chan struct{})
				sampled := make(chan struct{})
				go func() {
					defer close(sampled)
					tick := time.NewTicker(20 * time.Millisecond)
					defer tick.Stop()
					for {
						if r := rssBytes(); r > peak.Load() {
							peak.Store(r)
						}
						select {
						case <-stop:
							return
						case <-tick.C:
						}
					}
				}()
				var wg sync.WaitGroup
				for _, id := range ids {
					wg.Go(func() { e.putB(b, id, "site.jpg", newGen(size)) })
				}
				wg.Wait()
				close(stop)
				<-sampled
				peakOver = max(peakOver, peak.Load()-base)
			}
			b.ReportMetric(float64(peakOver)/1e6, "peakRSS-over-base-MB")
			b.ReportMetric(float64(20*size)/1e6, "MB-uploaded-at-once")
		})
	}
}

// attEnvB is attEnv for benchmarks.
type attEnvB struct{ *attEnv }

func newAttEnvB(b *testing.B) attEnvB {
	b.Helper()
	// The benchmark measures the server, not its log.
	e := newAttEnv(b, "sqlite", withConfig(func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) }))
	e.ts.srv.media = newMediaWithMax(e.ts, 200<<20) // files of 100 MB too
	return attEnvB{e}
}

func (e attEnvB) pushB(b *testing.B, id string, decl api.Attachment) {
	b.Helper()
	sub := api.Submission{ID: id, Form: "visit", FormVersion: "1", ClientModifiedAt: clockBase,
		Data: []byte(`{"name": "market", "photo": "site.jpg"}`), Attachments: []api.Attachment{decl}}
	var out api.PushResponse
	e.ts.want(b, http.StatusOK, http.MethodPost, pushPath(), e.tablet.token, api.PushRequest{Submissions: []api.Submission{sub}}, &out)
	if len(out.Results) != 1 || out.Results[0].Status != api.PushCreated {
		b.Fatalf("push: %+v", out.Results)
	}
}

func (e attEnvB) putB(b *testing.B, id, name string, body io.Reader) {
	req, err := http.NewRequest(http.MethodPut, e.ts.URL+attPath(id, name), body)
	if err != nil {
		b.Error(err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+e.tablet.token)
	resp, err := rawClient.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		b.Errorf("PUT: %d %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
}
