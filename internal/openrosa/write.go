package openrosa

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// langNames are the names Collect shows for the languages forms use most;
// "Name (code)" is the form Collect reads a locale from.
var langNames = map[string]string{
	"en": "English", "fr": "French", "sw": "Swahili", "ar": "Arabic", "es": "Spanish", "pt": "Portuguese",
	"am": "Amharic", "so": "Somali", "ha": "Hausa", "ti": "Tigrinya", "om": "Oromo", "rw": "Kinyarwanda",
	"ln": "Lingala", "my": "Burmese", "uk": "Ukrainian", "ru": "Russian", "fa": "Persian", "ps": "Pashto",
}

func langName(code string) string {
	if n, ok := langNames[code]; ok {
		return n + " (" + code + ")"
	}
	return code
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// write renders the XForm. Indentation and attribute order are fixed: the
// bytes are part of the contract (their md5 is the form's identity in Collect).
func (g *gen) write(b *bytes.Buffer, formID, version, title string, fields []*Field) {
	w := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("  ", indent))
		fmt.Fprintf(b, format, args...)
		b.WriteByte('\n')
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	w(0, `<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" xmlns:odk="http://www.opendatakit.org/xforms">`)
	w(1, `<h:head>`)
	w(2, `<h:title>%s</h:title>`, esc(title))
	w(2, `<model odk:xforms-version="1.0.0">`)
	if len(g.langs) > 0 {
		w(3, `<itext>`)
		for i, lang := range g.langs {
			def := ""
			if i == 0 {
				def = ` default="true()"`
			}
			w(4, `<translation lang="%s"%s>`, esc(langName(lang)), def)
			walk(fields, "/data", func(f *Field, ref string) {
				w(5, `<text id="%s:label"><value>%s</value></text>`, esc(ref), esc(g.labelIn(lang, i == 0, f)))
				if f.hint != "" {
					// Hints are not translated (ui.translations has labels and
					// choices only): every language shows the default one.
					w(5, `<text id="%s:hint"><value>%s</value></text>`, esc(ref), esc(f.hint))
				}
				for _, c := range f.Choices {
					w(5, `<text id="%s/%s:label"><value>%s</value></text>`, esc(ref), esc(c.Code), esc(g.choiceIn(lang, i == 0, c)))
				}
			})
			w(4, `</translation>`)
		}
		w(3, `</itext>`)
	}
	w(3, `<instance>`)
	w(4, `<data id="%s" version="%s">`, esc(formID), esc(version))
	var inst func(fs []*Field, indent int)
	inst = func(fs []*Field, indent int) {
		for _, f := range fs {
			switch {
			case f.Kind == KindGroup && len(f.Fields) > 0:
				w(indent, `<%s>`, f.XML)
				inst(f.Fields, indent+1)
				w(indent, `</%s>`, f.XML)
			case f.Kind == KindRepeat:
				w(indent, `<%s jr:template="">`, f.XML)
				if f.Item != nil {
					w(indent+1, `<value/>`)
				} else {
					inst(f.Fields, indent+1)
				}
				w(indent, `</%s>`, f.XML)
			case f.Kind == KindGroup:
				w(indent, `<%s/>`, f.XML)
			default:
				w(indent, `<%s/>`, f.XML)
			}
		}
	}
	inst(fields, 5)
	w(5, `<meta>`)
	w(6, `<instanceID/>`)
	w(6, `<timeStart/>`)
	w(6, `<timeEnd/>`)
	w(5, `</meta>`)
	w(4, `</data>`)
	w(3, `</instance>`)
	walk(fields, "/data", func(f *Field, ref string) {
		if f.Kind == KindGroup || (f.Kind == KindRepeat && f.Item == nil) {
			return
		}
		attrs := fmt.Sprintf(`nodeset="%s" type="%s"`, esc(ref), bindType(f))
		if f.required {
			attrs += ` required="true()"`
		}
		if f.constraint != "" {
			attrs += fmt.Sprintf(` constraint="%s"`, escAttr(f.constraint))
			if f.constraintMsg != "" {
				attrs += fmt.Sprintf(` jr:constraintMsg="%s"`, escAttr(f.constraintMsg))
			}
		}
		w(3, `<bind %s/>`, attrs)
	})
	w(3, `<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>`)
	w(3, `<bind nodeset="/data/meta/timeStart" type="dateTime" jr:preload="timestamp" jr:preloadParams="start"/>`)
	w(3, `<bind nodeset="/data/meta/timeEnd" type="dateTime" jr:preload="timestamp" jr:preloadParams="end"/>`)
	w(2, `</model>`)
	w(1, `</h:head>`)
	w(1, `<h:body>`)
	g.body(w, fields, "/data", 2)
	w(1, `</h:body>`)
	w(0, `</h:html>`)
}

func escAttr(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// walk visits every field that has a bind, depth first, with its XPath.
func walk(fs []*Field, base string, fn func(f *Field, ref string)) {
	for _, f := range fs {
		ref := base + "/" + f.XML
		fn(f, ref)
		switch {
		case f.Item != nil:
			fn(f.Item, ref+"/value")
		case f.Kind == KindGroup || f.Kind == KindRepeat:
			walk(f.Fields, ref, fn)
		}
	}
}

func bindType(f *Field) string {
	switch f.Kind {
	case KindInt:
		return "int"
	case KindDecimal:
		return "decimal"
	case KindBoolean, KindSelect1:
		return "string"
	case KindSelect:
		return "string"
	case KindConsent:
		return "string"
	case KindGeopoint:
		return "geopoint"
	case KindDate:
		return "date"
	case KindDateTime:
		return "dateTime"
	case KindTime:
		return "time"
	case KindBinary:
		return "binary"
	case KindRepeat:
		return "string"
	}
	return "string"
}

func (g *gen) labelIn(lang string, isDefault bool, f *Field) string {
	if !isDefault {
		if l, ok := g.labels[lang][f.ptr]; ok {
			return l
		}
	}
	return f.label
}

func (g *gen) choiceIn(lang string, isDefault bool, c Choice) string {
	if !isDefault {
		key := strings.Trim(string(c.Value), `"`)
		if l, ok := g.choiceLabels[lang][c.ptr][key]; ok {
			return l
		}
	}
	return c.label
}

// label writes a control's label (and hint): by itext reference when the form
// has translations, inline otherwise.
func (g *gen) label(w func(int, string, ...any), f *Field, ref string, indent int) {
	if len(g.langs) > 0 {
		w(indent, `<label ref="jr:itext('%s:label')"/>`, esc(ref))
		if f.hint != "" {
			w(indent, `<hint ref="jr:itext('%s:hint')"/>`, esc(ref))
		}
		return
	}
	w(indent, `<label>%s</label>`, esc(f.label))
	if f.hint != "" {
		w(indent, `<hint>%s</hint>`, esc(f.hint))
	}
}

func (g *gen) body(w func(int, string, ...any), fs []*Field, base string, indent int) {
	for _, f := range fs {
		ref := base + "/" + f.XML
		g.control(w, f, ref, indent)
	}
}

func (g *gen) control(w func(int, string, ...any), f *Field, ref string, indent int) {
	app := ""
	if f.appearance != "" {
		app = fmt.Sprintf(` appearance="%s"`, esc(f.appearance))
	}
	switch f.Kind {
	case KindGroup:
		w(indent, `<group ref="%s">`, esc(ref))
		g.label(w, f, ref, indent+1)
		g.body(w, f.Fields, ref, indent+1)
		w(indent, `</group>`)
	case KindRepeat:
		w(indent, `<group ref="%s">`, esc(ref))
		g.label(w, f, ref, indent+1)
		w(indent+1, `<repeat nodeset="%s">`, esc(ref))
		if f.Item != nil {
			g.control(w, f.Item, ref+"/value", indent+2)
		} else {
			g.body(w, f.Fields, ref, indent+2)
		}
		w(indent+1, `</repeat>`)
		w(indent, `</group>`)
	case KindConsent:
		w(indent, `<trigger ref="%s">`, esc(ref))
		g.label(w, f, ref, indent+1)
		w(indent, `</trigger>`)
	case KindBoolean, KindSelect1, KindSelect:
		tag := "select1"
		if f.Kind == KindSelect {
			tag = "select"
		}
		w(indent, `<%s ref="%s"%s>`, tag, esc(ref), app)
		g.label(w, f, ref, indent+1)
		for _, c := range f.Choices {
			w(indent+1, `<item>`)
			if len(g.langs) > 0 {
				w(indent+2, `<label ref="jr:itext('%s/%s:label')"/>`, esc(ref), esc(c.Code))
			} else {
				w(indent+2, `<label>%s</label>`, esc(c.label))
			}
			w(indent+2, `<value>%s</value>`, esc(c.Code))
			w(indent+1, `</item>`)
		}
		w(indent, `</%s>`, tag)
	case KindBinary:
		w(indent, `<upload ref="%s" mediatype="%s">`, esc(ref), esc(f.mediatype))
		g.label(w, f, ref, indent+1)
		w(indent, `</upload>`)
	default:
		w(indent, `<input ref="%s"%s>`, esc(ref), app)
		g.label(w, f, ref, indent+1)
		w(indent, `</input>`)
	}
}
