package console

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// The map of a form's geopoints is an SVG drawn on the server: longitude and
// latitude on a plate carrée (equirectangular) plate fitted to the points,
// with a graticule and a scale bar. It needs no tile server, no script and no
// outside request, so it works offline and under the console's CSP. (There is
// no admin setting for a tile layer, so none is drawn.)

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

// mapView is the data of analyst/map.
type mapView struct {
	Form               domain.Form
	Points             []mapPoint
	Grid               []gridLine
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
	v := mapView{Form: form, Width: mapWidth, Height: mapHeight, Query: filter.Query().Encode()}
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
	if len(v.Points) > 0 {
		project := plate(v.Points)
		for i := range v.Points {
			x, y := project.xy(v.Points[i].Lon, v.Points[i].Lat)
			v.Points[i].X, v.Points[i].Y = f1(x), f1(y)
		}
		v.Grid = project.graticule()
		v.ScaleX1, v.ScaleX2, v.ScaleY, v.ScaleLabel = project.scaleBar()
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

// scaleBar is a bar of a round distance, about a fifth of the width, at the
// bottom left; its length holds at the view's middle latitude (a plate
// carrée stretches east-west away from the equator).
func (p plateCarree) scaleBar() (x1, x2, y, label string) {
	midLat := (p.minLat + p.maxLat) / 2
	kmPerUnit := 111.32 * math.Cos(midLat*math.Pi/180) / p.scale
	if kmPerUnit <= 0 {
		kmPerUnit = 111.32 / p.scale
	}
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
