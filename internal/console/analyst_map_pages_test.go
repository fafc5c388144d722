package console_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fieldsync/fieldsync/internal/console"
)

// tileServer is a local XYZ tile server: every tile is a plain 256×256 PNG,
// and it records each request's path and Referer.
type tileServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []tileRequest
}

type tileRequest struct{ path, referer string }

func startTileServer(t *testing.T) *tileServer {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for i := range img.Pix {
		img.Pix[i] = 0xd0
	}
	img.Set(0, 0, color.Black)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	ts := &tileServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.requests = append(ts.requests, tileRequest{r.URL.Path, r.Header.Get("Referer")})
		ts.mu.Unlock()
		if !regexp.MustCompile(`^/\d+/\d+/\d+\.png$`).MatchString(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(buf.Bytes())
	}))
	t.Cleanup(ts.Close)
	return ts
}

// seen returns the requests so far.
func (ts *tileServer) seen() []tileRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]tileRequest(nil), ts.requests...)
}

// startMapEnv is startAnalystEnv with the console's map tile layer set.
func startMapEnv(t *testing.T, tiles console.MapTiles) *analystEnv {
	t.Helper()
	return startAnalystEnv(t, func(c *console.Config) { c.MapTiles = tiles })
}

// The seed's two points (records 1 and 2), by the order they are drawn.
var seedPoints = []struct{ lat, lon float64 }{{-1.3133, 36.7892}, {-1.2620, 36.8590}}

// slippyTile is the OSM wiki's formula for the tile of lon/lat at zoom z,
// written out again here so the page is checked against it rather than
// against the console's own code: the column and row, and the pixel inside
// the tile.
func slippyTile(lon, lat float64, z int) (x, y int, px, py float64) {
	n := math.Pow(2, float64(z))
	fx := (lon + 180) / 360 * n
	r := lat * math.Pi / 180
	fy := (1 - math.Asinh(math.Tan(r))/math.Pi) / 2 * n
	return int(fx), int(fy), (fx - math.Floor(fx)) * 256, (fy - math.Floor(fy)) * 256
}

var (
	tileImg   = regexp.MustCompile(`<foreignObject x="(-?\d+)" y="(-?\d+)" width="256" height="256"><img src="([^"]+)" width="256" height="256" alt="" referrerpolicy="no-referrer" class="map-tile"></foreignObject>`)
	mapCircle = regexp.MustCompile(`<circle cx="([-\d.]+)" cy="([-\d.]+)"`)
)

// TestMapTilesPage: with a tile layer configured the map page is drawn on
// the tiles of the tile server (fetched without a referrer), each point on
// the tile the slippy-map formula puts it on and at its pixel there, the
// attribution under the map, and the page's CSP lets images in from that
// origin alone; other pages keep the strict policy. Without the setting the
// map names no outside URL and has the strict policy.
func TestMapTilesPage(t *testing.T) {
	ts := startTileServer(t)
	e := startMapEnv(t, console.MapTiles{URL: ts.URL + "/{z}/{x}/{y}.png", Attribution: "© Test Tiles & contributors"})
	e.seed(t)
	c := e.SignIn(t, "alice", analystPassword)

	resp, body := c.Get("/projects/safety/data/forms/household/map")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("map: %d", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Content-Security-Policy"), console.ContentSecurityPolicyFor(ts.URL); got != want || !strings.Contains(got, "img-src 'self' data: "+ts.URL+";") {
		t.Errorf("map CSP %q, want %q", got, want)
	}
	if !strings.Contains(body, `<span id="map-attribution">Map tiles: © Test Tiles &amp; contributors</span>`) {
		t.Error("no attribution under the map")
	}
	tiles := tileImg.FindAllStringSubmatch(body, -1)
	circles := mapCircle.FindAllStringSubmatch(body, -1)
	if len(tiles) == 0 || len(circles) != len(seedPoints) {
		t.Fatalf("map: %d tiles, %d points\n%s", len(tiles), len(circles), body)
	}
	if strings.Contains(body, `class="map-grid"`) {
		t.Error("a plate carrée graticule over Mercator tiles")
	}
	zoom := -1
	for i, p := range seedPoints {
		cx, _ := strconv.ParseFloat(circles[i][1], 64)
		cy, _ := strconv.ParseFloat(circles[i][2], 64)
		var under []string
		for _, tl := range tiles {
			x, _ := strconv.Atoi(tl[1])
			y, _ := strconv.Atoi(tl[2])
			if cx >= float64(x) && cx < float64(x+256) && cy >= float64(y) && cy < float64(y+256) {
				under = append(under, tl[3])
				if zoom < 0 {
					fmt.Sscanf(strings.TrimPrefix(tl[3], ts.URL), "/%d/", &zoom)
				}
				tx, ty, px, py := slippyTile(p.lon, p.lat, zoom)
				if want := fmt.Sprintf("%s/%d/%d/%d.png", ts.URL, zoom, tx, ty); tl[3] != want {
					t.Errorf("point %v drawn on %s, want %s", p, tl[3], want)
				}
				// Within the 0.1 unit the picture's coordinates are written to.
				if math.Abs(cx-float64(x)-px) > 0.06 || math.Abs(cy-float64(y)-py) > 0.06 {
					t.Errorf("point %v at %.2f, %.2f in its tile, want %.2f, %.2f", p, cx-float64(x), cy-float64(y), px, py)
				}
			}
		}
		if len(under) != 1 {
			t.Errorf("point %v is over %d tiles: %v", p, len(under), under)
		}
	}
	if zoom < 10 || zoom > 17 {
		t.Errorf("zoom %d for points 8 km apart", zoom)
	}

	// Another page keeps the strict policy.
	resp, _ = c.Get("/projects/safety/data/forms/household")
	if got := resp.Header.Get("Content-Security-Policy"); got != console.ContentSecurityPolicy {
		t.Errorf("table CSP %q", got)
	}

	// Without the setting: the offline map, nothing from outside.
	plain := startAnalystEnv(t)
	plain.seed(t)
	c = plain.SignIn(t, "alice", analystPassword)
	resp, body = c.Get("/projects/safety/data/forms/household/map")
	if got := resp.Header.Get("Content-Security-Policy"); got != console.ContentSecurityPolicy {
		t.Errorf("map without tiles: CSP %q", got)
	}
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//[^"]*"`).FindAllString(body, -1); len(m) > 0 || strings.Contains(body, "<img") || strings.Contains(body, "foreignObject") {
		t.Errorf("map without tiles names outside URLs or images: %v", m)
	}
	if n := strings.Count(body, `class="map-point"`); n != 2 || !strings.Contains(body, `class="map-grid"`) || strings.Contains(body, "map-attribution") {
		t.Errorf("map without tiles: %d points, or not the plate carrée", n)
	}
}

// TestBrowserMapTiles: in Chromium, the map page with a tile layer loads
// every tile from the local tile server (the CSP lets them in: a blocked
// image has no size), without a Referer, and passes the accessibility
// checks.
func TestBrowserMapTiles(t *testing.T) {
	ts := startTileServer(t)
	e := startMapEnv(t, console.MapTiles{URL: ts.URL + "/{z}/{x}/{y}.png", Attribution: "© Test Tiles"})
	e.seed(t)
	b := e.NewBrowser(t)
	b.SignIn("alice", analystPassword)
	b.Visit("/projects/safety/data/forms/household/map")

	// Wait until the page and every tile image have finished, loaded or
	// failed (the browser's deadline bounds it).
	b.Do("wait for the tiles", chromedp.Poll[chromedp.Void](
		`document.readyState === "complete" && [...document.querySelectorAll("#map img")].every(i => i.complete)`))
	srcs, _ := b.Eval(`[...document.querySelectorAll("#map img")].map(i => i.src + " " + i.naturalWidth).join("\n")`).(string)
	lines := strings.Split(srcs, "\n")
	if len(lines) == 0 || srcs == "" {
		t.Fatal("no tile images in the page")
	}
	got := map[string]string{}
	for _, r := range ts.seen() {
		got[r.path] = r.referer
	}
	for _, l := range lines {
		src, width, _ := strings.Cut(l, " ")
		if width != "256" {
			t.Errorf("tile %s not shown (natural width %s): blocked?", src, width)
		}
		path := strings.TrimPrefix(src, ts.URL)
		ref, ok := got[path]
		if !ok {
			t.Errorf("the tile server never got %s", path)
		}
		if ref != "" {
			t.Errorf("%s was fetched with Referer %q", path, ref)
		}
	}
	if got := b.Text("#map-attribution"); got != "Map tiles: © Test Tiles" {
		t.Errorf("attribution %q", got)
	}
	b.CheckAccessible()
	// No screenshot: the test's tiles are blank squares.
}
