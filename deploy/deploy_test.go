// Package deploy holds the deployment files (Dockerfile, compose, Kubernetes,
// systemd). No container engine runs in CI, so this test checks what can be
// checked without one: the files parse, they set only settings the server
// knows, the pieces refer to each other, and the image is built with the
// command CI builds with.
package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// knownSettings are the environment variables of the configuration table in
// cmd/fieldsync/config.go (settings), which the README's table mirrors.
func knownSettings(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("../cmd/fieldsync/config.go")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`\{"(FIELDSYNC_[A-Z0-9_]+)", "`).FindAllSubmatch(src, -1) {
		known[string(m[1])] = true
	}
	if len(known) < 10 {
		t.Fatalf("found only %d settings in config.go: has the table moved?", len(known))
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range known {
		if !bytes.Contains(readme, []byte("| `"+name+"` |")) {
			t.Errorf("%s is not in the README's configuration table", name)
		}
	}
	return known
}

func checkVar(t *testing.T, known map[string]bool, where, name string) {
	t.Helper()
	if strings.HasPrefix(name, "FIELDSYNC_") && !known[name] {
		t.Errorf("%s sets %s, which the server does not know", where, name)
	}
}

// TestCompose: two fieldsync services behind a proxy service, on three
// MongoDB members started as one replica set that a service initiates.
func TestCompose(t *testing.T) {
	known := knownSettings(t)
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Command     any               `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			DependsOn   any               `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var fieldsyncs, mongos []string
	proxy := ""
	initiates := false
	for name, s := range c.Services {
		cmd := strings.Join(flatten(s.Command), " ")
		switch {
		case s.Build != nil:
			fieldsyncs = append(fieldsyncs, name)
			if !strings.HasPrefix(s.Environment["FIELDSYNC_STORE"], "mongodb://") || !strings.Contains(s.Environment["FIELDSYNC_STORE"], "replicaSet=") {
				t.Errorf("service %s: FIELDSYNC_STORE %q is not a replica set URI", name, s.Environment["FIELDSYNC_STORE"])
			}
			for k := range s.Environment {
				checkVar(t, known, "compose service "+name, k)
			}
		case strings.HasPrefix(s.Image, "mongo") && strings.Contains(cmd, "--replSet"):
			mongos = append(mongos, name)
		case strings.HasPrefix(s.Image, "mongo") && strings.Contains(cmd, "rs.initiate"):
			initiates = true
		case strings.HasPrefix(s.Image, "caddy") || strings.HasPrefix(s.Image, "nginx") || strings.HasPrefix(s.Image, "traefik"):
			proxy = name
		}
	}
	if len(fieldsyncs) != 2 || len(mongos) != 3 || !initiates || proxy == "" {
		t.Errorf("compose: fieldsync services %v, MongoDB members %v, initiation %v, proxy %q; want 2, 3, true and one", fieldsyncs, mongos, initiates, proxy)
	}
	caddy, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fieldsyncs {
		if !bytes.Contains(caddy, []byte(f+":8080")) {
			t.Errorf("the proxy does not send to %s", f)
		}
	}
}

// flatten turns a compose command (a string or a list) into its words.
func flatten(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, flatten(x)...)
		}
		return out
	}
	return nil
}

// k8sObject is the part of a Kubernetes object the test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Selector       yaml.Node `yaml:"selector"`
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []struct {
					Env []struct {
						Name string `yaml:"name"`
					} `yaml:"env"`
					EnvFrom []struct {
						SecretRef struct {
							Name string `yaml:"name"`
						} `yaml:"secretRef"`
					} `yaml:"envFrom"`
					LivenessProbe  probe `yaml:"livenessProbe"`
					ReadinessProbe probe `yaml:"readinessProbe"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// probe is a container probe.
type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
	} `yaml:"httpGet"`
}

// TestKubernetes: a Deployment probed on /healthz and /readyz, a Service, an
// HPA and a PDB that target it, and a Secret whose keys are settings.
func TestKubernetes(t *testing.T) {
	known := knownSettings(t)
	f, err := os.Open("kubernetes/fieldsync.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	objs := map[string]k8sObject{}
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("kubernetes/fieldsync.yaml: %v", err)
		}
		objs[o.Kind] = o
	}
	for _, kind := range []string{"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret"} {
		if _, ok := objs[kind]; !ok {
			t.Errorf("no %s", kind)
		}
	}
	d := objs["Deployment"]
	labels := d.Spec.Template.Metadata.Labels
	if len(d.Spec.Template.Spec.Containers) != 1 || !d.Spec.Template.Spec.SecurityContext.RunAsNonRoot {
		t.Fatalf("deployment: %d containers, runAsNonRoot %v", len(d.Spec.Template.Spec.Containers), d.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes: liveness %q, readiness %q; want /healthz and /readyz", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	for _, e := range c.Env {
		checkVar(t, known, "the Deployment's env", e.Name)
	}
	secret := objs["Secret"]
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != secret.Metadata.Name {
		t.Errorf("the Deployment does not take its environment from the Secret %q", secret.Metadata.Name)
	}
	for k := range secret.StringData {
		checkVar(t, known, "the Secret", k)
		if !strings.HasPrefix(k, "FIELDSYNC_") {
			t.Errorf("the Secret's key %s is no setting", k)
		}
	}
	for _, kind := range []string{"Service", "PodDisruptionBudget", "Deployment"} {
		sel := map[string]string{}
		var raw struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		}
		node := objs[kind].Spec.Selector
		if node.Decode(&raw) == nil && raw.MatchLabels != nil {
			sel = raw.MatchLabels
		} else if err := node.Decode(&sel); err != nil {
			t.Errorf("%s selector: %v", kind, err)
		}
		if len(sel) == 0 {
			t.Errorf("%s has no selector", kind)
		}
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s selects %s=%s, which the Deployment's pods do not carry", kind, k, v)
			}
		}
	}
	if h := objs["HorizontalPodAutoscaler"].Spec.ScaleTargetRef; h.Kind != "Deployment" || h.Name != d.Metadata.Name {
		t.Errorf("the HPA scales %s/%s, not the Deployment %s", h.Kind, h.Name, d.Metadata.Name)
	}
}

// TestSystemd: the units set only known settings.
func TestSystemd(t *testing.T) {
	known := knownSettings(t)
	for _, name := range []string{"fieldsync.service", "fieldsync-backup.service"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^Environment=(FIELDSYNC_[A-Z0-9_]+)=`).FindAllSubmatch(b, -1) {
			checkVar(t, known, name, string(m[1]))
		}
	}
}

// TestDockerfile: the image runs as a user other than root, owns /data, and
// is built with the go build of .ci/run.
func TestDockerfile(t *testing.T) {
	known := knownSettings(t)
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindAllSubmatch(df, -1)
	if len(user) == 0 || slices.Contains([]string{"root", "0", "0:0"}, string(user[len(user)-1][1])) {
		t.Errorf("the image's last USER is %q, want a user other than root", user)
	}
	if !regexp.MustCompile(`--chown=65532:65532\S* .*/data`).Match(df) || !bytes.Contains(df, []byte("USER 65532")) {
		t.Error("/data is not owned by the user the server runs as (65532)")
	}
	for _, m := range regexp.MustCompile(`(FIELDSYNC_[A-Z0-9_]+)=`).FindAllSubmatch(df, -1) {
		checkVar(t, known, "Dockerfile", string(m[1]))
	}
	build := func(src []byte, where string) string {
		m := regexp.MustCompile(`CGO_ENABLED=0 go build [^\n\\&]*`).Find(src)
		if m == nil {
			t.Fatalf("no CGO_ENABLED=0 go build in %s", where)
		}
		// The output directory differs; everything else must not.
		return regexp.MustCompile(`-o \S+`).ReplaceAllString(strings.TrimSpace(string(m)), "-o OUT")
	}
	if d, c := build(df, "Dockerfile"), build(ci, ".ci/run"); d != c {
		t.Errorf("the Dockerfile builds with\n\t%s\nand CI with\n\t%s", d, c)
	}
}
