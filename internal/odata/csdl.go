package odata

import (
	"bytes"
	"encoding/xml"
)

// Metadata writes the model as the CSDL XML of OData 4.0 ($metadata): the
// entity types and their sets, the complex types of groups, the record
// metadata (__system) and geopoints (__geopoint), with annotations of what
// the service supports (the Capabilities vocabulary, as ODK Central does)
// and each question's label as its Core.Description.
func (m *Model) Metadata() []byte {
	var b bytes.Buffer
	w := func(s ...string) {
		for _, x := range s {
			b.WriteString(x)
		}
	}
	q := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s))
		return `"` + string(bytes.ReplaceAll(e.Bytes(), []byte(`"`), []byte("&quot;"))) + `"`
	}
	w(`<?xml version="1.0" encoding="UTF-8"?>`, "\n")
	w(`<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">`, "\n")
	w(`<edmx:Reference Uri="https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml">`,
		`<edmx:Include Namespace="Org.OData.Core.V1" Alias="Core"/></edmx:Reference>`, "\n")
	w(`<edmx:Reference Uri="https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Capabilities.V1.xml">`,
		`<edmx:Include Namespace="Org.OData.Capabilities.V1" Alias="Capabilities"/></edmx:Reference>`, "\n")
	w(`<edmx:DataServices>`, "\n")
	w(`<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace=`, q(m.Namespace), `>`, "\n")
	props := func(t *Type) {
		for _, p := range t.Props {
			w(`<Property Name=`, q(p.Name), ` Type=`, q(p.Type))
			if p.Title == "" {
				w(`/>`, "\n")
				continue
			}
			w(`><Annotation Term="Core.Description" String=`, q(p.Title), `/></Property>`, "\n")
		}
	}
	for _, s := range m.Sets {
		w(`<EntityType Name=`, q(s.Type.Name), `>`, "\n")
		w(`<Key><PropertyRef Name="`, keyName, `"/></Key>`, "\n")
		props(s.Type)
		w(`</EntityType>`, "\n")
	}
	for _, t := range m.Complex {
		w(`<ComplexType Name=`, q(t.Name), `>`, "\n")
		props(t)
		w(`</ComplexType>`, "\n")
	}
	w(`<ComplexType Name="`, systemType, `">`, "\n")
	for _, p := range systemProps {
		w(`<Property Name=`, q(p.name), ` Type=`, q(p.typ), `/>`, "\n")
	}
	w(`</ComplexType>`, "\n")
	w(`<ComplexType Name="`, geoType, `">`, "\n")
	for _, n := range geoFields {
		w(`<Property Name="`, n, `" Type="`, edmDouble, `"/>`, "\n")
	}
	w(`</ComplexType>`, "\n")
	w(`<EntityContainer Name=`, q(m.Container), `>`, "\n")
	for _, s := range m.Sets {
		w(`<EntitySet Name=`, q(s.Name), ` EntityType=`, q(m.Namespace+"."+s.Type.Name), `>`, "\n")
		w(`<Annotation Term="Capabilities.ConformanceLevel" EnumMember="Capabilities.ConformanceLevelType/Minimal"/>`, "\n")
		w(`<Annotation Term="Capabilities.BatchSupported" Bool="false"/>`, "\n")
		w(`<Annotation Term="Capabilities.CountRestrictions"><Record><PropertyValue Property="Countable" Bool="true"/></Record></Annotation>`, "\n")
		w(`<Annotation Term="Capabilities.SortRestrictions"><Record><PropertyValue Property="Sortable" Bool="false"/></Record></Annotation>`, "\n")
		w(`<Annotation Term="Capabilities.ExpandRestrictions"><Record><PropertyValue Property="Expandable" Bool="false"/></Record></Annotation>`, "\n")
		if s.Parent == nil {
			w(`<Annotation Term="Capabilities.FilterRestrictions"><Record><PropertyValue Property="Filterable" Bool="true"/>`,
				`<PropertyValue Property="RequiresFilter" Bool="false"/></Record></Annotation>`, "\n")
		} else {
			w(`<Annotation Term="Capabilities.FilterRestrictions"><Record><PropertyValue Property="Filterable" Bool="false"/></Record></Annotation>`, "\n")
		}
		w(`</EntitySet>`, "\n")
	}
	w(`</EntityContainer>`, "\n")
	w(`</Schema>`, "\n", `</edmx:DataServices>`, "\n", `</edmx:Edmx>`, "\n")
	return b.Bytes()
}

// geoFields are the properties of __geopoint: separate numbers, because Power
// BI's map visuals take a latitude and a longitude column (an
// Edm.GeographyPoint reaches Power BI as a record it cannot map directly).
var geoFields = []string{"latitude", "longitude", "altitude", "accuracy"}
