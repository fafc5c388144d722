package console

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// The map of a form's geopoints is an SVG drawn on the server. By default it
// is a plate carrée (equirectangular) plate fitted to the points, with a
// graticule and a scale bar: it needs no tile server, no script and no
// outside request, so it works offline and under the console's strict CSP.
//
// Where the admin configures a tile layer (Config.MapTiles, set by
// FIELDSYNC_MAP_TILES), the map is drawn in Web Mercator instead, on the
// covering tiles of the zoom that fits the points: the server does the
// projection and picks the tiles, the browser only fetches the images
// (still no script). Only that page's CSP lets images in from the tile
// host, and each image is fetched without a referrer, so the tile host
// does not learn the console's URLs (which name projects and forms).

// Map geometry, in SVG user units (the picture scales to the page).
const (
	mapWidth  = 960
	mapHeight = 540
	mapPad    = 24
	// mapMaxPoints bounds the points drawn: each is a link, and a page of a
	// few thousand still loads quickly on a slow link.
	mapMaxPoints = 2000
)

// mapPoint is one record's point, in SVG coordinates.
type mapPoint struct {
	ID, Label string
	X, Y      string
	Lat, Lon  float64
}

// gridLine is a graticule line with its label.
type gridLine struct {
	X1, Y1, X2, Y2, LX, LY, Label string
}

// mapTile is one tile image of the picture: its URL and its top-left corner.
type mapTile struct {
	Href string
	X, Y int
}

// mapView is the data of analyst/map.
type mapView struct {
	Form               domain.Form
	Points             []mapPoint
	Grid               []gridLine
	Tiles              []mapTile
	Attribution        string
	Width, Height      int
	ScaleX1, ScaleX2   string
	ScaleY, ScaleLabel string
	NoGeo              bool
	Truncated          bool
	Skipped            int
	Query              string
}

// analystMap draws the records' first geopoint (the column internal/export
// picks for geojson) as an SVG scatter on a plate carrée; the filters are the
// submissions table's.
func (c *Console) analystMap(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	project, formID := pageFrom(ctx).project, mux.Vars(r)["form"]
	filter, q, err := parseFilter(r, project, formID)
	if err != nil {
		return err
	}
	if err := c.cfg.Records.CheckQuery(ctx, q); err != nil {
		return err
	}
	form, model, _, err := c.formModel(r, project, formID)
	if err != nil {
		return err
	}
	v := mapView{Form: form, Width: mapWidth, Height: mapHeight, Query: linkQuery(filter.Query())}
	latCol, lonCol, _ := model.Main.Geo()
	if latCol < 0 || lonCol < 0 {
		v.NoGeo = true
		c.render(w, r, http.StatusOK, "analyst/map", "analyst.map.title", v)
		return nil
	}
	latPtr, lonPtr := model.Main.Columns[latCol].Pointer, model.Main.Columns[lonCol].Pointer
	for rec, err := range c.cfg.Records.Records(ctx, q) {
		if err != nil {
			return err
		}
		data := decodeData(rec.Data)
		lat, okLat := number(lookup(data, latPtr))
		lon, okLon := number(lookup(data, lonPtr))
		if !okLat || !okLon || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
			v.Skipped++
			continue
		}
		if len(v.Points) == mapMaxPoints {
			v.Truncated = true
			break
		}
		v.Points = append(v.Points, mapPoint{ID: rec.ID, Label: formatTime(rec.CreatedAt), Lat: lat, Lon: lon})
	}
	switch {
	case len(v.Points) > 0 && c.tiles.URL != "":
		view := fitMercator(v.Points, maxTileZoom)
		for i := range v.Points {
			x, y := view.xy(v.Points[i].Lon, v.Points[i].Lat)
			v.Points[i].X, v.Points[i].Y = f1(x), f1(y)
		}
		v.Tiles = view.tiles(c.tiles.URL)
		v.Attribution = c.tiles.Attribution
		v.ScaleX1, v.ScaleX2, v.ScaleY, v.ScaleLabel = scaleBar(view.kmPerUnit())
		// This page alone may show images from the tile host.
		w.Header().Set("Content-Security-Policy", ContentSecurityPolicyFor(c.tileOrigin))
	case len(v.Points) > 0:
		project := plate(v.Points)
		for i := range v.Points {
			x, y := project.xy(v.Points[i].Lon, v.Points[i].Lat)
			v.Points[i].X, v.Points[i].Y = f1(x), f1(y)
		}
		v.Grid = project.graticule()
		v.ScaleX1, v.ScaleX2, v.ScaleY, v.ScaleLabel = scaleBar(project.kmPerUnit())
	}
	c.render(w, r, http.StatusOK, "analyst/map", "analyst.map.title", v)
	return nil
}

// number reads a JSON number (or a numeric string) of a lookup.
func number(v any, ok bool) (float64, bool) {
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	}
	return 0, false
}

// plateCarree maps lon/lat to the picture: one degree is the same length
// on both axes, the points' box centred and fitted inside the padding.
type plateCarree struct {
	minLon, maxLon, minLat, maxLat float64
	scale                          float64 // units per degree
	offX, offY                     float64
}

func plate(pts []mapPoint) plateCarree {
	p := plateCarree{minLon: 180, maxLon: -180, minLat: 90, maxLat: -90}
	for _, pt := range pts {
		p.minLon, p.maxLon = math.Min(p.minLon, pt.Lon), math.Max(p.maxLon, pt.Lon)
		p.minLat, p.maxLat = math.Min(p.minLat, pt.Lat), math.Max(p.maxLat, pt.Lat)
	}
	// A margin around the points, and at least about a kilometre of view
	// so a single point is not a whole-world zoom.
	spanLon, spanLat := math.Max(p.maxLon-p.minLon, 0.01), math.Max(p.maxLat-p.minLat, 0.01)
	cLon, cLat := (p.minLon+p.maxLon)/2, (p.minLat+p.maxLat)/2
	spanLon, spanLat = spanLon*1.15, spanLat*1.15
	p.minLon, p.maxLon = cLon-spanLon/2, cLon+spanLon/2
	p.minLat, p.maxLat = cLat-spanLat/2, cLat+spanLat/2
	w, h := float64(mapWidth-2*mapPad), float64(mapHeight-2*mapPad)
	p.scale = math.Min(w/spanLon, h/spanLat)
	p.offX = mapPad + (w-spanLon*p.scale)/2
	p.offY = mapPad + (h-spanLat*p.scale)/2
	return p
}

func (p plateCarree) xy(lon, lat float64) (float64, float64) {
	return p.offX + (lon-p.minLon)*p.scale, p.offY + (p.maxLat-lat)*p.scale
}

// niceStep is the 1, 2 or 5 times a power of ten nearest above x.
func niceStep(x float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= x {
			return m * e
		}
	}
	return 10 * e
}

// graticule is the lines of whole steps of longitude and latitude, about
// five across the view, labelled in degrees.
func (p plateCarree) graticule() []gridLine {
	step := niceStep(math.Max(p.maxLon-p.minLon, p.maxLat-p.minLat) / 5)
	// Whole multiples of the step, counted (not summed, which drifts), and
	// labelled with the step's decimals.
	prec := max(0, int(-math.Floor(math.Log10(step))))
	var out []gridLine
	for k := math.Ceil(p.minLon / step); k*step <= p.maxLon; k++ {
		x, _ := p.xy(k*step, 0)
		out = append(out, gridLine{X1: f1(x), Y1: f1(p.offY), X2: f1(x), Y2: f1(p.offY + (p.maxLat-p.minLat)*p.scale),
			LX: f1(x + 3), LY: f1(p.offY + 12), Label: degrees(k*step, prec, "E", "W")})
	}
	for k := math.Ceil(p.minLat / step); k*step <= p.maxLat; k++ {
		_, y := p.xy(0, k*step)
		out = append(out, gridLine{X1: f1(p.offX), Y1: f1(y), X2: f1(p.offX + (p.maxLon-p.minLon)*p.scale), Y2: f1(y),
			LX: f1(p.offX + 3), LY: f1(y - 3), Label: degrees(k*step, prec, "N", "S")})
	}
	return out
}

// kmPerUnit is the length of one SVG unit at the view's middle latitude (a
// plate carrée stretches east-west away from the equator).
func (p plateCarree) kmPerUnit() float64 {
	midLat := (p.minLat + p.maxLat) / 2
	if k := 111.32 * math.Cos(midLat*math.Pi/180) / p.scale; k > 0 {
		return k
	}
	return 111.32 / p.scale
}

// scaleBar is a bar of a round distance, about a fifth of the width, at the
// bottom left, for a picture of kmPerUnit kilometres per SVG unit.
func scaleBar(kmPerUnit float64) (x1, x2, y, label string) {
	km := niceStep(kmPerUnit * mapWidth / 8)
	length := km / kmPerUnit
	label = fmt.Sprintf("%g km", km)
	if km < 1 {
		label = fmt.Sprintf("%g m", km*1000)
	}
	return f1(mapPad), f1(mapPad + length), f1(mapHeight - mapPad/2), label
}

// degrees labels a graticule line: 1.25°S, 36.8°E.
func degrees(v float64, prec int, pos, neg string) string {
	h := pos
	if v < 0 {
		v, h = -v, neg
	}
	if v == 0 {
		h = ""
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + "°" + h
}

// f1 is a coordinate with one decimal, as SVG attributes want it.
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// MapTiles is a tile layer for the analysts' map, set by the admin: an XYZ
// ("slippy map") URL template and the credit its provider requires. The zero
// value draws no tiles (the offline plate carrée).
type MapTiles struct {
	// URL is the template, such as https://tile.example.org/{z}/{x}/{y}.png:
	// {z}, {x} and {y} are replaced by the zoom and the tile's column and
	// row. https, or http for a loopback host (a tile server on the same
	// machine); see TileOrigin.
	URL string
	// Attribution is the credit shown under the map ("© OpenStreetMap
	// contributors").
	Attribution string
}

// TileOrigin checks an XYZ tile URL template and returns the origin
// (scheme://host[:port]) the map page's Content-Security-Policy must let
// images in from. The template must hold {z}, {x} and {y}, in the path or
// the query (not in the host: the CSP names one host), and no other {…}
// placeholder (such as {s} for a provider's several hosts); its scheme must be
// https, or http for a loopback host (localhost, 127.0.0.0/8), since a plain
// tile request would show the map's place to the network. An IPv6 literal
// cannot be named in a CSP, and neither can credentials in the URL.
func TileOrigin(template string) (string, error) {
	for _, p := range []string{"{z}", "{x}", "{y}"} {
		if !strings.Contains(template, p) {
			return "", fmt.Errorf("the tile URL %q must contain {z}, {x} and {y} (it lacks %s)", template, p)
		}
	}
	rest := strings.NewReplacer("{z}", "0", "{x}", "0", "{y}", "0").Replace(template)
	if i := strings.IndexAny(rest, "{}"); i >= 0 {
		return "", fmt.Errorf("the tile URL %q has a placeholder other than {z}, {x} and {y}; name one host (no {s}) and no other parameter", template)
	}
	u, err := url.Parse(rest)
	if err != nil {
		return "", fmt.Errorf("the tile URL %q is not a URL: %v", template, err)
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	if u.Opaque != "" || host == "" {
		return "", fmt.Errorf("the tile URL %q must be absolute, as https://tile.example.org/{z}/{x}/{y}.png", template)
	}
	if u.User != nil {
		return "", fmt.Errorf("the tile URL %q holds credentials before the host; put an API key in the query instead", template)
	}
	// The host as first written must be the host parsed, not made by a
	// placeholder ({z}.example.org).
	if authority, _, _ := strings.Cut(strings.TrimPrefix(template[len(u.Scheme):], "://"), "/"); strings.Contains(authority, "{") {
		return "", fmt.Errorf("the tile URL %q has a placeholder in its host; {z}, {x} and {y} belong in the path or the query", template)
	}
	if strings.HasPrefix(u.Host, "[") {
		return "", fmt.Errorf("the tile URL %q names its host by an IPv6 address, which a Content-Security-Policy cannot allow; use a host name", template)
	}
	for _, r := range host {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '.' {
			return "", fmt.Errorf("the tile URL %q has a host with %q; write an international name in its ASCII (xn--) form", template, r)
		}
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("the tile URL %q has a bad port %q", template, port)
		}
	}
	switch scheme {
	case "https":
	case "http":
		if !loopbackHost(host) {
			return "", fmt.Errorf("the tile URL %q must be https (http only for a tile server on this machine: localhost or 127.0.0.1)", template)
		}
	default:
		return "", fmt.Errorf("the tile URL %q must be https", template)
	}
	origin := scheme + "://" + host
	if port := u.Port(); port != "" {
		origin += ":" + port
	}
	return origin, nil
}

// loopbackHost reports whether host names this machine: localhost or an
// IPv4 loopback address.
func loopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Web Mercator, as the XYZ tile servers cut it (OpenStreetMap's "slippy map
// tilenames"): at zoom z the world between ±85.0511° is 2^z × 2^z tiles of
// tileSize pixels, x growing east from 180°W, y south from the top.
const (
	tileSize = 256
	// maxTileZoom is the closest zoom drawn: about a kilometre across the
	// picture (so a single point is not a street-level view), and within
	// what every tile server serves (0–18).
	maxTileZoom = 17
	// mercatorMaxLat is the latitude of the world's top edge, atan(sinh(π)).
	mercatorMaxLat = 85.0511287798066
	// earthCircumferenceKm is the equator's length on the sphere Web Mercator
	// uses (radius 6378137 m).
	earthCircumferenceKm = 2 * math.Pi * 6378.137
)

// worldXY is where lon/lat falls at zoom z, in tiles: the integer parts are
// the column and row of the tile that holds it, the fractions its place
// inside that tile. Latitudes beyond ±85.0511° are drawn on the edge.
func worldXY(lon, lat float64, z int) (x, y float64) {
	n := math.Exp2(float64(z))
	lat = math.Max(-mercatorMaxLat, math.Min(mercatorMaxLat, lat))
	phi := lat * math.Pi / 180
	x = (lon + 180) / 360 * n
	y = (1 - math.Log(math.Tan(phi)+1/math.Cos(phi))/math.Pi) / 2 * n
	return x, y
}

// mercatorView is the picture on the tiles: its zoom and its top-left
// corner in the pixels of that zoom's world.
type mercatorView struct {
	z         int
	left, top float64
	centreLat float64
}

// fitMercator picks the closest zoom, at most maxZoom, at which the points'
// box with a margin fits inside the picture's padding, and centres the box.
func fitMercator(pts []mapPoint, maxZoom int) mercatorView {
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	minLat, maxLat := 90.0, -90.0
	for _, p := range pts {
		x, y := worldXY(p.Lon, p.Lat, 0)
		minX, maxX, minY, maxY = math.Min(minX, x), math.Max(maxX, x), math.Min(minY, y), math.Max(maxY, y)
		minLat, maxLat = math.Min(minLat, p.Lat), math.Max(maxLat, p.Lat)
	}
	// The same 15% margin as the plate.
	spanX, spanY := (maxX-minX)*1.15*tileSize, (maxY-minY)*1.15*tileSize
	w, h := float64(mapWidth-2*mapPad), float64(mapHeight-2*mapPad)
	z := maxZoom
	for z > 0 && (spanX*math.Exp2(float64(z)) > w || spanY*math.Exp2(float64(z)) > h) {
		z--
	}
	scale := tileSize * math.Exp2(float64(z))
	// Whole pixels, so the tiles sit on whole units and meet without seams.
	return mercatorView{z: z,
		left: math.Round((minX+maxX)/2*scale - mapWidth/2), top: math.Round((minY+maxY)/2*scale - mapHeight/2),
		centreLat: (minLat + maxLat) / 2}
}

// xy is where lon/lat falls in the picture.
func (v mercatorView) xy(lon, lat float64) (float64, float64) {
	x, y := worldXY(lon, lat, v.z)
	return x*tileSize - v.left, y*tileSize - v.top
}

// kmPerUnit is the length of one pixel at the view's middle latitude.
func (v mercatorView) kmPerUnit() float64 {
	return earthCircumferenceKm * math.Cos(v.centreLat*math.Pi/180) / (tileSize * math.Exp2(float64(v.z)))
}

// tiles are the tiles that cover the picture, with their URLs from
// template. Columns wrap around the antimeridian (a wide view at a low zoom
// repeats the world); rows beyond the poles are left out.
func (v mercatorView) tiles(template string) []mapTile {
	n := 1 << v.z
	var out []mapTile
	for ty := int(math.Floor(v.top / tileSize)); float64(ty*tileSize) < v.top+mapHeight; ty++ {
		if ty < 0 || ty >= n {
			continue
		}
		for tx := int(math.Floor(v.left / tileSize)); float64(tx*tileSize) < v.left+mapWidth; tx++ {
			col := ((tx % n) + n) % n
			href := strings.NewReplacer("{z}", strconv.Itoa(v.z), "{x}", strconv.Itoa(col), "{y}", strconv.Itoa(ty)).Replace(template)
			out = append(out, mapTile{Href: href, X: tx*tileSize - int(v.left), Y: ty*tileSize - int(v.top)})
		}
	}
	return out
}
