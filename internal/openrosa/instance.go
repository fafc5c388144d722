package openrosa

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// Limits of one submitted instance.
const (
	// MaxInstanceBytes bounds the xml_submission_file: interviews are a few
	// kilobytes; a megabyte is a form with thousands of answers.
	MaxInstanceBytes = 4 << 20
	// maxInstanceDepth bounds element nesting (groups and repeats inside
	// each other), so a hostile document cannot exhaust the stack.
	maxInstanceDepth = 64
	// maxInstanceElements bounds the elements of one instance.
	maxInstanceElements = 200000
)

// elem is one element of a submitted instance: its local name (namespaces
// are ignored; Collect and the web engine write the instance in the XForm's
// default namespace, or none), attributes, children and text.
type elem struct {
	name     string
	attrs    map[string]string
	children []*elem
	text     strings.Builder
}

// Instance is a submitted instance, parsed.
type Instance struct {
	FormID  string // the root's id attribute
	Version string // the root's version attribute
	// InstanceID and DeprecatedID are meta/instanceID and meta/deprecatedID
	// without their "uuid:" prefix.
	InstanceID   string
	DeprecatedID string
	// TimeEnd is meta/timeEnd; zero when absent or not a time.
	TimeEnd time.Time
	root    *elem
}

// ErrNotXML is matched by the errors of ParseInstance for a body that is not
// a well-formed XML document with a root element.
var ErrNotXML = errors.New("openrosa: not an XML instance")

// ParseInstance reads a submitted instance. Errors match ErrNotXML.
func ParseInstance(raw []byte) (*Instance, error) {
	if len(raw) > MaxInstanceBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrNotXML, MaxInstanceBytes)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	dec.Strict = true
	var stack []*elem
	var root *elem
	count := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotXML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			count++
			if len(stack) >= maxInstanceDepth || count > maxInstanceElements {
				return nil, fmt.Errorf("%w: nested too deep or too many elements", ErrNotXML)
			}
			e := &elem{name: t.Name.Local}
			for _, a := range t.Attr {
				if e.attrs == nil {
					e.attrs = map[string]string{}
				}
				e.attrs[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("%w: more than one root element", ErrNotXML)
				}
				root = e
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		case xml.Directive:
			// A DOCTYPE could declare entities; an instance never has one.
			return nil, fmt.Errorf("%w: directives (DOCTYPE) are not accepted", ErrNotXML)
		}
	}
	if root == nil {
		return nil, fmt.Errorf("%w: no root element", ErrNotXML)
	}
	in := &Instance{root: root, FormID: root.attrs["id"], Version: root.attrs["version"]}
	if meta := root.child("meta"); meta != nil {
		in.InstanceID = stripUUID(meta.childText("instanceID"))
		in.DeprecatedID = stripUUID(meta.childText("deprecatedID"))
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(meta.childText("timeEnd"))); err == nil {
			in.TimeEnd = t
		}
	}
	return in, nil
}

func stripUUID(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 5 && strings.EqualFold(s[:5], "uuid:") {
		return s[5:]
	}
	return s
}

func (e *elem) child(name string) *elem {
	for _, c := range e.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (e *elem) childText(name string) string {
	if c := e.child(name); c != nil {
		return c.text.String()
	}
	return ""
}

// empty reports whether an element holds no answer: no text, no non-empty child.
func (e *elem) empty() bool {
	if strings.TrimSpace(e.text.String()) != "" {
		return false
	}
	for _, c := range e.children {
		if !c.empty() {
			return false
		}
	}
	return true
}

// Decoded is an instance read by its form's map.
type Decoded struct {
	Data json.RawMessage
	// Findings are the answers that could not be read (quarantine, never a
	// lost submission).
	Findings []domain.Finding
	// Files are the file names of binary answers, in document order.
	Files []string
}

// Decode turns an instance into a record's data by the form's map: empty
// elements are absent properties, meta feeds record fields, not data.
func (m Meta) Decode(in *Instance) Decoded {
	d := &decoder{}
	var b bytes.Buffer
	d.object(&b, in.root, m.Fields, "", true)
	return Decoded{Data: b.Bytes(), Findings: d.findings, Files: d.files}
}

type decoder struct {
	findings []domain.Finding
	files    []string
}

func (d *decoder) fail(path, keyword, msg string) {
	if len(d.findings) < 100 {
		d.findings = append(d.findings, domain.Finding{Path: "/data" + path, Keyword: keyword, Message: msg})
	}
}

func writeKey(b *bytes.Buffer, first *bool, k string) {
	if !*first {
		b.WriteByte(',')
	}
	*first = false
	kb, _ := json.Marshal(k)
	b.Write(kb)
	b.WriteByte(':')
}

// object writes the JSON object of e's children by fields.
func (d *decoder) object(b *bytes.Buffer, e *elem, fields []*Field, path string, top bool) {
	b.WriteByte('{')
	first := true
	known := map[string]bool{}
	for _, f := range fields {
		known[f.XML] = true
		p := path + "/" + escPtr(f.Name)
		if f.Kind == KindRepeat {
			var items []*elem
			for _, c := range e.children {
				if c.name == f.XML && !c.empty() {
					items = append(items, c)
				}
			}
			if len(items) == 0 {
				continue
			}
			writeKey(b, &first, f.Name)
			b.WriteByte('[')
			for i, c := range items {
				if i > 0 {
					b.WriteByte(',')
				}
				ip := fmt.Sprintf("%s/%d", p, i)
				if f.Item != nil {
					v := c.child("value")
					if v == nil || v.empty() {
						b.WriteString("null")
						d.fail(ip, "required", "an empty repeat answer")
						continue
					}
					d.value(b, v, f.Item, ip)
				} else {
					d.object(b, c, f.Fields, ip, false)
				}
			}
			b.WriteByte(']')
			continue
		}
		c := e.child(f.XML)
		if c == nil || c.empty() {
			continue
		}
		writeKey(b, &first, f.Name)
		if f.Kind == KindGroup {
			d.object(b, c, f.Fields, p, false)
			continue
		}
		d.value(b, c, f, p)
	}
	b.WriteByte('}')
	for _, c := range e.children {
		if known[c.name] || (top && c.name == "meta") || c.empty() {
			continue
		}
		d.fail(path+"/"+escPtr(c.name), "unknown", fmt.Sprintf("element %q is not a question of this form version", c.name))
	}
}

// value writes one answer.
func (d *decoder) value(b *bytes.Buffer, e *elem, f *Field, path string) {
	raw := e.text.String()
	t := strings.TrimSpace(raw)
	str := func(s string) {
		sb, _ := json.Marshal(s)
		b.Write(sb)
	}
	switch f.Kind {
	case KindString:
		str(raw)
	case KindDate, KindDateTime, KindTime:
		str(t)
	case KindBinary:
		str(t)
		d.files = append(d.files, t)
	case KindInt:
		if n, err := strconv.ParseInt(t, 10, 64); err == nil {
			b.WriteString(strconv.FormatInt(n, 10))
		} else {
			str(raw)
			d.fail(path, "type", fmt.Sprintf("%q is not a whole number", t))
		}
	case KindDecimal:
		b.WriteString(d.number(t, path, raw))
	case KindConsent:
		b.WriteString("true")
	case KindBoolean, KindSelect1:
		b.Write(d.choice(f, t, path))
	case KindSelect:
		b.WriteByte('[')
		for i, code := range strings.Fields(t) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(d.choice(f, code, fmt.Sprintf("%s/%d", path, i)))
		}
		b.WriteByte(']')
	case KindGeopoint:
		parts := strings.Fields(t)
		if len(parts) < 2 || len(parts) > 4 {
			str(raw)
			d.fail(path, "format", fmt.Sprintf("%q is not a location (latitude longitude [altitude [accuracy]])", t))
			return
		}
		names := []string{"latitude", "longitude", "altitude", "accuracy"}
		b.WriteByte('{')
		first := true
		for i, p := range parts {
			if i >= 2 && !contains(f.Geo, names[i]) {
				continue
			}
			writeKey(b, &first, names[i])
			b.WriteString(d.number(p, path+"/"+names[i], p))
		}
		b.WriteByte('}')
	default:
		str(raw)
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// number returns t as a JSON number, or raw as a string with a finding.
func (d *decoder) number(t, path, raw string) string {
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f != f || f > 1.7e308 || f < -1.7e308 {
		d.fail(path, "type", fmt.Sprintf("%q is not a number", t))
		sb, _ := json.Marshal(raw)
		return string(sb)
	}
	if json.Valid([]byte(t)) && !strings.ContainsAny(t, "\"[{tfn") {
		return t
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func (d *decoder) choice(f *Field, code, path string) json.RawMessage {
	for _, c := range f.Choices {
		if c.Code == code {
			return c.Value
		}
	}
	d.fail(path, "enum", fmt.Sprintf("%q is not one of the choices", code))
	sb, _ := json.Marshal(code)
	return sb
}
