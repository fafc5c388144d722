package main

import (
	"bufio"
	"context"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/api"
)

// fleetVerdict is what the final pull found against the ledger.
type fleetVerdict struct {
	Records int `json:"records"` // records the run was acknowledged
	// Lost: acknowledged records missing from the pull, or holding an older
	// revision than one acknowledged (an acknowledged write undone).
	Lost int `json:"lost"`
	// Duplicated: records the pull carried more than once.
	Duplicated int `json:"duplicated"`
	// Conflicts: pushes answered conflict; ConflictsUnrecorded: those whose
	// tablet's side is not among the record's recorded conflicts.
	Conflicts           int `json:"conflicts"`
	ConflictsUnrecorded int `json:"conflicts_unrecorded"`
	// Forked: records whose pulled revision is of the acknowledged
	// generation but not one acknowledged.
	Forked int `json:"forked"`
	// Pulled is every record of the project the pull carried; PullTook is its
	// time.
	Pulled   int           `json:"pulled"`
	PullTook time.Duration `json:"-"`
	// Examples name a few of the failures, for the report.
	Examples []string `json:"examples,omitempty"`
}

// ok says whether nothing acknowledged was lost, doubled or left unrecorded.
func (v fleetVerdict) ok() bool {
	return v.Lost == 0 && v.Duplicated == 0 && v.ConflictsUnrecorded == 0 && v.Forked == 0
}

func (v *fleetVerdict) example(format string, id string) {
	if len(v.Examples) < 5 {
		v.Examples = append(v.Examples, strings.ReplaceAll(format, "%s", id))
	}
}

// verify pulls the whole project as the caller (a manager or analyst sees
// every record) and checks every acknowledgement of the ledger against it:
// each acknowledged record is there exactly once, at the highest revision
// acknowledged for it (or a later one), and each conflict answered is among
// the record's conflicts.
func (f *fleet) verify(ctx context.Context) (fleetVerdict, error) {
	type seen struct {
		n        int
		rev      string
		conflict map[string]bool // tablets with a side in a recorded conflict
	}
	got := make(map[string]*seen, len(f.led.recs))
	start := time.Now()
	pulled := 0
	_, err := pullPages(ctx, f.s, f.cfg.project, "", api.MaxPullLimit, func(page api.PullResponse) error {
		pulled += len(page.Changes)
		for _, rec := range page.Changes {
			if f.led.recs[rec.ID] == nil {
				continue // not this run's
			}
			s := got[rec.ID]
			if s == nil {
				s = &seen{}
				got[rec.ID] = s
			}
			s.n++
			s.rev = rec.Rev
			for _, c := range rec.Conflicts {
				for _, v := range c.Values {
					if v.DeviceID != "" {
						if s.conflict == nil {
							s.conflict = map[string]bool{}
						}
						s.conflict[v.DeviceID] = true
					}
				}
			}
		}
		return nil
	})
	v := fleetVerdict{Pulled: pulled, PullTook: time.Since(start), Records: len(f.led.recs)}
	if err != nil {
		return v, err
	}
	for id, want := range f.led.recs {
		v.Conflicts += len(want.conflicts)
		s := got[id]
		switch {
		case s == nil:
			v.Lost++
			v.example("record %s: acknowledged, not in the pull", id)
			continue
		case s.n > 1:
			v.Duplicated++
			v.example("record %s: in the pull more than once", id)
		}
		switch g := revGen(s.rev); {
		case g < want.gen:
			v.Lost++
			v.example("record %s: the pull holds an older revision than one acknowledged", id)
		case g == want.gen && !containsString(want.revs, s.rev):
			v.Forked++
			v.example("record %s: the pull holds a revision other than the one acknowledged", id)
		}
		for _, dev := range want.conflicts {
			if !s.conflict[dev] {
				v.ConflictsUnrecorded++
				v.example("record %s: a conflict answered to a tablet is not recorded", id)
			}
		}
	}
	return v, nil
}

// rssSampler reads the server's process_resident_memory_bytes from its
// Prometheus /metrics every interval and keeps the highest.
type rssSampler struct {
	url  string
	hc   *http.Client
	mu   sync.Mutex
	peak float64
	seen bool
	err  error
}

// sample reads the metric once.
func (r *rssSampler) sample(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		r.setErr(err)
		return
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		r.setErr(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		r.setErr(&api.Problem{Status: resp.StatusCode, Title: resp.Status})
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				r.mu.Lock()
				r.peak, r.seen = max(r.peak, f), true
				r.mu.Unlock()
			}
			return
		}
	}
}

func (r *rssSampler) setErr(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
}

// run samples until ctx ends.
func (r *rssSampler) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// result is the peak RSS in bytes, or -1 when the server never told it.
func (r *rssSampler) result() (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen {
		return -1, r.err
	}
	return int64(r.peak), nil
}

// dirSizeAtRest is the bytes of the regular files under dir (what the
// server's data directory takes on disk, WAL and all) once the server has
// emptied its SQLite WAL, which it does a second after writes pause (a burst
// of pushes leaves up to ~40 MB there, which the data directory does not
// keep): it waits for no "-wal" file over 256 KiB, at most wait, then answers.
func dirSizeAtRest(dir string, wait time.Duration) (int64, error) {
	deadline := time.Now().Add(wait)
	for {
		var n, wal int64
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
			if strings.HasSuffix(path, "-wal") {
				wal = max(wal, info.Size())
			}
			return nil
		})
		if err != nil || wal <= 256<<10 || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
