package storetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/fieldsync/fieldsync/internal/domain"
)

// openRosa checks OpenRosaStore: the XForm of a published version is set once
// and kept byte for byte, device keys name one device, and instances are
// stored once.
func (s suite) openRosa(t *testing.T) {
	s.run(t, "XFormSetOnce", func(t *testing.T, ctx context.Context, st domain.Store) {
		_, err := st.PutFormVersion(ctx, testVersion("juba", "perception", "1", 0))
		noErr(t, err, "PutFormVersion")
		_, err = st.SetFormVersionXForm(ctx, "juba", "perception", "1", []byte("<h:html/>"), "aa", json.RawMessage(`{}`))
		isErr(t, err, domain.ErrStale, "SetFormVersionXForm of a draft")
		_, err = st.SetFormVersionXForm(ctx, "juba", "perception", "9", []byte("<h:html/>"), "aa", nil)
		isErr(t, err, domain.ErrNotFound, "SetFormVersionXForm of an unknown version")
		_, err = st.PublishFormVersion(ctx, "juba", "perception", "1", at(1))
		noErr(t, err, "PublishFormVersion")

		first := []byte("<h:html>first \x00\xff bytes</h:html>")
		got, err := st.SetFormVersionXForm(ctx, "juba", "perception", "1", first, "md5-first", json.RawMessage(`{"warnings":["w"]}`))
		noErr(t, err, "SetFormVersionXForm")
		if string(got.XForm) != string(first) || got.XFormMD5 != "md5-first" {
			t.Errorf("SetFormVersionXForm = %q %q, want the XForm just set", got.XForm, got.XFormMD5)
		}
		if !sameJSON(got.OpenRosa, json.RawMessage(`{"warnings":["w"]}`)) {
			t.Errorf("meta = %s", got.OpenRosa)
		}
		again, err := st.SetFormVersionXForm(ctx, "juba", "perception", "1", []byte("<other/>"), "md5-other", json.RawMessage(`{}`))
		noErr(t, err, "SetFormVersionXForm again")
		if string(again.XForm) != string(first) || again.XFormMD5 != "md5-first" {
			t.Errorf("a second SetFormVersionXForm replaced the XForm: %q %q", again.XForm, again.XFormMD5)
		}
		v, err := st.GetFormVersion(ctx, "juba", "perception", "1")
		noErr(t, err, "GetFormVersion")
		if string(v.XForm) != string(first) || v.XFormMD5 != "md5-first" {
			t.Errorf("GetFormVersion XForm = %q %q", v.XForm, v.XFormMD5)
		}
		f, err := st.GetForm(ctx, "juba", "perception")
		noErr(t, err, "GetForm")
		if len(f.Versions) != 1 || f.Versions[0].XForm != nil || f.Versions[0].OpenRosa != nil {
			t.Errorf("GetForm versions carry the XForm: %+v", f.Versions)
		}
	})
	s.run(t, "DeviceKeys", func(t *testing.T, ctx context.Context, st domain.Store) {
		noErr(t, st.CreateDevice(ctx, testDevice("d1", "juba", 0)), "CreateDevice")
		noErr(t, st.CreateDevice(ctx, testDevice("d2", "juba", 1)), "CreateDevice")
		_, err := st.GetDeviceByOpenRosaKey(ctx, "")
		isErr(t, err, domain.ErrNotFound, "GetDeviceByOpenRosaKey of \"\"")
		isErr(t, st.SetDeviceOpenRosaKey(ctx, "nope", "k0"), domain.ErrNotFound, "SetDeviceOpenRosaKey of an unknown device")
		noErr(t, st.SetDeviceOpenRosaKey(ctx, "d1", "k1"), "SetDeviceOpenRosaKey")
		d, err := st.GetDeviceByOpenRosaKey(ctx, "k1")
		noErr(t, err, "GetDeviceByOpenRosaKey")
		if d.ID != "d1" || d.ProjectID != "juba" {
			t.Errorf("GetDeviceByOpenRosaKey = %+v, want d1", d)
		}
		noErr(t, st.SetDeviceOpenRosaKey(ctx, "d1", "k2"), "SetDeviceOpenRosaKey replace")
		_, err = st.GetDeviceByOpenRosaKey(ctx, "k1")
		isErr(t, err, domain.ErrNotFound, "GetDeviceByOpenRosaKey of a replaced key")
		noErr(t, st.SetDeviceOpenRosaKey(ctx, "d2", ""), "SetDeviceOpenRosaKey remove")
		noErr(t, st.SetDeviceOpenRosaKey(ctx, "d1", ""), "SetDeviceOpenRosaKey remove")
		_, err = st.GetDeviceByOpenRosaKey(ctx, "k2")
		isErr(t, err, domain.ErrNotFound, "GetDeviceByOpenRosaKey of a removed key")
		noErr(t, st.RevokeDevice(ctx, "d2", at(3)), "RevokeDevice")
		noErr(t, st.SetDeviceOpenRosaKey(ctx, "d2", "k3"), "SetDeviceOpenRosaKey")
		d, err = st.GetDeviceByOpenRosaKey(ctx, "k3")
		noErr(t, err, "GetDeviceByOpenRosaKey of a revoked device")
		if d.RevokedAt == nil {
			t.Error("GetDeviceByOpenRosaKey: a revoked device comes back without RevokedAt")
		}
	})
	s.run(t, "Instances", func(t *testing.T, ctx context.Context, st domain.Store) {
		in := domain.OpenRosaInstance{ProjectID: "juba", InstanceID: "i1", RecordID: recordID(1), Rev: "1-aa", XMLHash: "h1", CreatedAt: at(0)}
		_, err := st.GetOpenRosaInstance(ctx, "juba", "i1")
		isErr(t, err, domain.ErrNotFound, "GetOpenRosaInstance of an unknown id")
		got, created, err := st.PutOpenRosaInstance(ctx, in)
		noErr(t, err, "PutOpenRosaInstance")
		if !created {
			t.Error("PutOpenRosaInstance of a new instance: created = false")
		}
		same(t, "instance", got, in)
		other := in
		other.Rev, other.XMLHash = "2-bb", "h2"
		got, created, err = st.PutOpenRosaInstance(ctx, other)
		noErr(t, err, "PutOpenRosaInstance again")
		if created {
			t.Error("PutOpenRosaInstance of a held instance: created = true")
		}
		same(t, "held instance", got, in)
		elsewhere := other
		elsewhere.ProjectID = "wau"
		_, created, err = st.PutOpenRosaInstance(ctx, elsewhere)
		noErr(t, err, "PutOpenRosaInstance in another project")
		if !created {
			t.Error("an instance id of another project counts as held")
		}
		got, err = st.GetOpenRosaInstance(ctx, "juba", "i1")
		noErr(t, err, "GetOpenRosaInstance")
		same(t, "instance read", got, in)
	})
}
