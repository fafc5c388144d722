package console

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestWorldXYKnownTiles: lon/lat → tile column and row, and the place inside
// the tile, against published values of the OSM slippy-map formulas
// (mapbox/mercantile's tests and docs, the tile of central London at zoom
// 10 that OSM serves as 10/511/340) and one worked by hand.
func TestWorldXYKnownTiles(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lon, lat float64
		z        int
		x, y     int
	}{
		{"mercantile.tile(20.6852, 40.1222, 9)", 20.6852, 40.1222, 9, 285, 193},
		{"mercantile.tile(-105.0, 40.0, 1)", -105, 40, 1, 0, 0},
		{"London", -0.1278, 51.5074, 10, 511, 340},
		{"Nairobi (worked by hand)", 36.8219, -1.2921, 12, 2466, 2062},
		{"just south-east of 0°, 0°", 0.0001, -0.0001, 1, 1, 1},
		{"the antimeridian's west edge", -180, 0, 3, 0, 4},
	} {
		x, y := worldXY(tc.lon, tc.lat, tc.z)
		if int(math.Floor(x)) != tc.x || int(math.Floor(y)) != tc.y {
			t.Errorf("%s: tile %d/%.4f/%.4f, want %d/%d/%d", tc.name, tc.z, x, y, tc.z, tc.x, tc.y)
		}
	}
	// A tile's top-left corner (mercantile.ul(486, 332, 10)) falls on the
	// corner exactly: pixel 0, 0 of that tile.
	x, y := worldXY(-9.140625, 53.33087298301705, 10)
	if math.Abs(x-486) > 1e-9 || math.Abs(y-332) > 1e-9 {
		t.Errorf("ul(486, 332, 10) → %.12f, %.12f", x, y)
	}
	// The middle of the world at zoom 0 is the middle of its one tile, and
	// the poles beyond 85.0511° are drawn on its edges.
	if x, y := worldXY(0, 0, 0); x*tileSize != 128 || math.Abs(y*tileSize-128) > 1e-9 {
		t.Errorf("0°, 0° at zoom 0: pixel %g, %g", x*tileSize, y*tileSize)
	}
	if _, y := worldXY(10, 89.9, 4); math.Abs(y) > 1e-9 {
		t.Errorf("89.9°N at zoom 4: row %g, want the top edge", y)
	}
}

// TestFitMercator: the zoom is the closest at which the points fit (one more
// and they would not), the points' box is centred, and each point is drawn
// on the tile image that holds its place, at its pixel there.
func TestFitMercator(t *testing.T) {
	pts := []mapPoint{{Lat: -1.3133, Lon: 36.7892}, {Lat: -1.2620, Lon: 36.8590}, {Lat: -1.2833, Lon: 36.8167}}
	v := fitMercator(pts, maxTileZoom)
	inside := func(v mercatorView) bool {
		for _, p := range pts {
			x, y := v.xy(p.Lon, p.Lat)
			if x < mapPad || x > mapWidth-mapPad || y < mapPad || y > mapHeight-mapPad {
				return false
			}
		}
		return true
	}
	if !inside(v) || v.z >= maxTileZoom {
		t.Fatalf("zoom %d: the points do not fit, or no zoom was chosen", v.z)
	}
	// The next zoom, centred on the points' box (west and north corner of
	// the three, east and south): they do not fit.
	closer := mercatorView{z: v.z + 1}
	minX, minY := worldXY(36.7892, -1.2620, closer.z)
	maxX, maxY := worldXY(36.8590, -1.3133, closer.z)
	closer.left, closer.top = (minX+maxX)/2*tileSize-mapWidth/2, (minY+maxY)/2*tileSize-mapHeight/2
	if inside(closer) {
		t.Errorf("zoom %d fits too, but %d was chosen", closer.z, v.z)
	}
	tiles := v.tiles("https://t.example.org/{z}/{x}/{y}.png")
	for _, p := range pts {
		px, py := v.xy(p.Lon, p.Lat)
		wx, wy := worldXY(p.Lon, p.Lat, v.z)
		want := fmt.Sprintf("https://t.example.org/%d/%d/%d.png", v.z, int(wx), int(wy))
		found := false
		for _, tl := range tiles {
			if px >= float64(tl.X) && px < float64(tl.X+tileSize) && py >= float64(tl.Y) && py < float64(tl.Y+tileSize) {
				found = true
				if tl.Href != want {
					t.Errorf("point %v is drawn on %s, want %s", p, tl.Href, want)
				}
				if dx, dy := px-float64(tl.X), py-float64(tl.Y); math.Abs(dx-(wx-math.Floor(wx))*tileSize) > 1e-6 || math.Abs(dy-(wy-math.Floor(wy))*tileSize) > 1e-6 {
					t.Errorf("point %v at %g, %g in its tile, want %g, %g", p, dx, dy, (wx-math.Floor(wx))*tileSize, (wy-math.Floor(wy))*tileSize)
				}
			}
		}
		if !found {
			t.Errorf("no tile under point %v", p)
		}
	}
	// The tiles cover the picture without gaps: whole rows and columns.
	cols, rows := map[int]bool{}, map[int]bool{}
	for _, tl := range tiles {
		cols[tl.X], rows[tl.Y] = true, true
	}
	if len(tiles) != len(cols)*len(rows) || len(cols)*tileSize < mapWidth || len(rows)*tileSize < mapHeight {
		t.Errorf("%d tiles in %d columns and %d rows do not cover %d×%d", len(tiles), len(cols), len(rows), mapWidth, mapHeight)
	}

	// One point: the closest zoom, the point in the middle.
	one := fitMercator(pts[:1], maxTileZoom)
	if x, y := one.xy(pts[0].Lon, pts[0].Lat); one.z != maxTileZoom || math.Abs(x-mapWidth/2) > 1 || math.Abs(y-mapHeight/2) > 1 {
		t.Errorf("one point: zoom %d at %g, %g", one.z, x, y)
	}
	// Points across the world: zoom 0 or 1, columns wrapped to 0…2^z-1,
	// no rows beyond the poles.
	world := fitMercator([]mapPoint{{Lat: 60, Lon: -170}, {Lat: -50, Lon: 170}}, maxTileZoom)
	if world.z > 1 {
		t.Errorf("points across the world at zoom %d", world.z)
	}
	for _, tl := range world.tiles("https://t.example.org/{z}/{x}/{y}.png") {
		var z, x, y int
		if _, err := fmt.Sscanf(tl.Href, "https://t.example.org/%d/%d/%d.png", &z, &x, &y); err != nil || x < 0 || x >= 1<<z || y < 0 || y >= 1<<z {
			t.Errorf("tile %s is not in the world", tl.Href)
		}
	}
}

// TestTileOrigin: the templates accepted, with the origin the CSP names,
// and the ones refused with a reason.
func TestTileOrigin(t *testing.T) {
	for tmpl, want := range map[string]string{
		"https://tile.example.org/{z}/{x}/{y}.png":                  "https://tile.example.org",
		"HTTPS://Tiles.Example.org:8443/osm/{z}/{x}/{y}.png?key=k1": "https://tiles.example.org:8443",
		"https://t.example.org/tiles?z={z}&x={x}&y={y}":             "https://t.example.org",
		"http://127.0.0.1:8081/{z}/{x}/{y}.png":                     "http://127.0.0.1:8081",
		"http://localhost/{z}/{y}/{x}.png":                          "http://localhost",
	} {
		got, err := TileOrigin(tmpl)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", tmpl, got, err, want)
		}
	}
	for tmpl, why := range map[string]string{
		"http://tile.example.org/{z}/{x}/{y}.png":          "must be https",
		"http://10.0.0.5/{z}/{x}/{y}.png":                  "must be https",
		"ftp://tile.example.org/{z}/{x}/{y}.png":           "must be https",
		"https://tile.example.org/{z}/{x}.png":             "lacks {y}",
		"https://tile.example.org/tiles.png":               "lacks {z}",
		"https://{s}.tile.example.org/{z}/{x}/{y}.png":     "placeholder other than",
		"https://{z}.example.org/{x}/{y}.png":              "placeholder in its host",
		"https://tile.example.org/{z}/{x}/{y}@2x.png{r}":   "placeholder other than",
		"/tiles/{z}/{x}/{y}.png":                           "must be absolute",
		"tile.example.org/{z}/{x}/{y}.png":                 "must be absolute",
		"https://user:pw@tile.example.org/{z}/{x}/{y}.png": "credentials",
		"http://[::1]:8081/{z}/{x}/{y}.png":                "IPv6",
		"https://tuiles.exemple.fr/{z}/{x}/{y}.png":        "",
		"https://carte.exemplé.fr/{z}/{x}/{y}.png":         "xn--",
		"https://tile.example.org:99999/{z}/{x}/{y}.png":   "port",
	} {
		_, err := TileOrigin(tmpl)
		switch {
		case why == "" && err != nil:
			t.Errorf("%s: refused: %v", tmpl, err)
		case why != "" && (err == nil || !strings.Contains(err.Error(), why)):
			t.Errorf("%s: %v; want it refused (%s)", tmpl, err, why)
		}
	}
}

// TestContentSecurityPolicyFor: without tiles the policy is the strict one;
// with them it differs only by the tile origin in img-src.
func TestContentSecurityPolicyFor(t *testing.T) {
	if ContentSecurityPolicyFor("") != ContentSecurityPolicy {
		t.Error("no tiles: not the strict policy")
	}
	got := ContentSecurityPolicyFor("https://tile.example.org")
	if !strings.Contains(got, "img-src 'self' data: https://tile.example.org;") ||
		strings.Replace(got, " https://tile.example.org", "", 1) != ContentSecurityPolicy {
		t.Errorf("with tiles: %q", got)
	}
}
