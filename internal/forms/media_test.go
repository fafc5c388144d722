package forms

import (
	"reflect"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

const mediaForm = `{"title": "Visit", "schema": {"type": "object", "$defs": {"clip": {"type": "string", "contentMediaType": "audio/*"}},
	"properties": {
		"photo": {"type": "string", "contentMediaType": "image/jpeg"},
		"report": {"type": "string", "contentMediaType": "application/pdf"},
		"statements": {"type": "array", "items": {"type": "object", "properties": {"audio": {"$ref": "#/$defs/clip"}}}}}}}`

// TestMediaDefinition: a string property with contentMediaType names a file;
// the definition keeps the fast path of validation (the keyword is an
// annotation the library and the fast path both leave alone), and a media
// type an answer cannot name is refused where it is written.
func TestMediaDefinition(t *testing.T) {
	d, err := ParseDefinition([]byte(mediaForm))
	if err != nil {
		t.Fatalf("ParseDefinition: %v", err)
	}
	if d.fast == nil {
		t.Error("contentMediaType turned the fast path of validation off")
	}
	if len(d.media) != 3 {
		t.Errorf("media fields %+v; want photo, report and statements/*/audio", d.media)
	}
	_, err = ParseDefinition([]byte(`{"title": "x", "schema": {"type": "object", "properties": {"page": {"type": "string", "contentMediaType": "text/html"}}}}`))
	e, ok := domain.AsError(err)
	if !ok || e.Code != CodeInvalidDefinition || len(e.Findings) != 1 || e.Findings[0].Path != "/schema/properties/page/contentMediaType" {
		t.Fatalf("text/html: %v %+v; want one finding at the keyword", err, e)
	}
}

func TestMediaFindings(t *testing.T) {
	d, err := ParseDefinition([]byte(mediaForm))
	if err != nil {
		t.Fatal(err)
	}
	jpeg := domain.Attachment{Name: "site.jpg", SHA256: "x", Size: 1, ContentType: "image/jpeg"}
	wav := domain.Attachment{Name: "s1.wav", SHA256: "y", Size: 1, ContentType: "audio/wav"}
	untyped := domain.Attachment{Name: "any.bin", SHA256: "z", Size: 1}
	for _, tc := range []struct {
		name     string
		data     string
		declared []domain.Attachment
		want     []domain.Finding
	}{
		{"declared", `{"photo": "site.jpg", "statements": [{"audio": "s1.wav"}]}`, []domain.Attachment{jpeg, wav}, nil},
		{"no answers", `{}`, nil, nil},
		{"empty answer names nothing", `{"photo": ""}`, nil, nil},
		{"undeclared", `{"photo": "site.jpg", "statements": [{}, {"audio": "s2.wav"}]}`, []domain.Attachment{jpeg}, []domain.Finding{
			{Path: "/statements/1/audio", Keyword: "attachment", Message: `names the file "s2.wav", which the item does not declare in attachments`}}},
		{"wrong kind", `{"photo": "s1.wav"}`, []domain.Attachment{wav}, []domain.Finding{
			{Path: "/photo", Keyword: "contentMediaType", Message: `names the file "s1.wav", declared as audio/wav; this question takes image/jpeg`}}},
		{"no declared type is not checked", `{"report": "any.bin"}`, []domain.Attachment{untyped}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := d.MediaFindings([]byte(tc.data), tc.declared)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MediaFindings = %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestMediaTypeMatches(t *testing.T) {
	for _, tc := range []struct {
		want, ct string
		ok       bool
	}{
		{"image/*", "image/png", true}, {"image/*", "IMAGE/PNG", true}, {"image/*", "audio/mp4", false},
		{"image/jpeg", "image/jpeg; q=1", true}, {"image/jpeg", "image/png", false},
		{"application/pdf", "application/pdf", true}, {"audio/*", "not a type", false},
	} {
		if got := MediaTypeMatches(tc.want, tc.ct); got != tc.ok {
			t.Errorf("MediaTypeMatches(%q, %q) = %v", tc.want, tc.ct, got)
		}
	}
}
