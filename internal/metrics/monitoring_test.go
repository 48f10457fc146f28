package metrics_test

// Tests of the optional monitoring component (config/components/monitoring, documented
// in docs/metrics.md), on what `make build-installer` ships with the component enabled:
// config/default with the component added, rendered by kustomize's own library.
//
//   - The PrometheusRule's groups load with Prometheus' own rule loader (rulefmt, what
//     promtool check rules and the Prometheus server run), every expr parses with the
//     PromQL parser, and every metric and label the rules use is one the manager
//     registers on controller-runtime's registry (this binary links internal/manager and
//     builds a real SCIM server, as cmd/manager does).
//   - Every alert is evaluated by Prometheus' own rule engine (rules.AlertingRule over
//     promqltest storage) against synthetic series in which it must fire, and against
//     series in which it must not: a wrong expression, label or threshold fails here.
//   - The Grafana dashboard is valid JSON whose every PromQL target parses and uses only
//     registered metrics and labels.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	_ "github.com/scim-operator/scim-operator/internal/manager" // every metric the manager binary registers at init
	"github.com/scim-operator/scim-operator/internal/scimserver"
)

const (
	repoRoot     = "../.."
	componentDir = "config/components/monitoring"
	dashboardKey = "scim-operator.json"
)

// targetLabels are the labels Prometheus (through the component's ServiceMonitor) adds
// to every scraped series.
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

var promql = parser.NewParser(parser.Options{})

// ---- what the manager registers ----

// metric is one registered metric family: its labels and, when it has series, its type.
type metric struct {
	labels map[string]bool
	typ    *dto.MetricType
}

var (
	registeredOnce sync.Once
	registeredSet  map[string]*metric
	registeredErr  error
)

var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*constLabels: \{(.*)\}, variableLabels: \{([^}]*)\}\}$`)

// registered lists the metrics on controller-runtime's registry (the one the manager's
// /metrics serves) with their label names, from the registry's own descriptors: a vector
// with no series yet is listed too.
func registered(t *testing.T) map[string]*metric {
	t.Helper()
	registeredOnce.Do(func() {
		// The SCIM server registers its metrics when it is built, as in cmd/manager.
		c := fake.NewClientBuilder().Build()
		if _, err := scimserver.New(scimserver.Options{Client: c, APIReader: c}); err != nil {
			registeredErr = err
			return
		}
		coll, ok := ctrlmetrics.Registry.(prometheus.Collector)
		if !ok {
			registeredErr = fmt.Errorf("controller-runtime's registry is a %T, not a prometheus.Collector", ctrlmetrics.Registry)
			return
		}
		ch := make(chan *prometheus.Desc)
		go func() { coll.Describe(ch); close(ch) }()
		set := map[string]*metric{}
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				registeredErr = fmt.Errorf("unreadable descriptor %s", d)
				continue
			}
			ls := map[string]bool{}
			for _, kv := range splitNonEmpty(m[2]) {
				ls[strings.SplitN(kv, "=", 2)[0]] = true
			}
			for _, l := range splitNonEmpty(m[3]) {
				ls[strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")")] = true
			}
			set[m[1]] = &metric{labels: ls}
		}
		fams, err := ctrlmetrics.Registry.Gather()
		if err != nil {
			registeredErr = err
			return
		}
		for _, f := range fams {
			if m := set[f.GetName()]; m != nil {
				m.typ = f.Type
			}
		}
		registeredSet = set
	})
	if registeredErr != nil {
		t.Fatalf("listing the registered metrics: %v", registeredErr)
	}
	return registeredSet
}

func splitNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// lookup resolves a series name to its registered metric: the name itself, or a
// histogram's or summary's _bucket, _sum and _count series.
func lookup(set map[string]*metric, name string) (map[string]bool, bool) {
	if m, ok := set[name]; ok {
		return m.labels, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		m := set[base]
		if !ok || m == nil {
			continue
		}
		if m.typ != nil && *m.typ != dto.MetricType_HISTOGRAM && *m.typ != dto.MetricType_SUMMARY {
			return nil, false
		}
		ls := cloneSet(m.labels)
		if suffix == "_bucket" {
			ls["le"] = true
		}
		return ls, true
	}
	return nil, false
}

func cloneSet(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---- PromQL checks ----

// checker walks a parsed expression and reports every metric that is not registered and
// every label (in a matcher, by/without, on/ignoring, group_left) that the series it
// applies to cannot have. It returns the labels the expression's result can carry.
type checker struct {
	set   map[string]*metric
	errs  []string
	names map[string]bool
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

func (c *checker) labelsOf(e parser.Expr) map[string]bool {
	switch n := e.(type) {
	case *parser.VectorSelector:
		name := n.Name
		for _, m := range n.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			c.errorf("%s: a selector must name its metric", n)
			return map[string]bool{}
		}
		c.names[name] = true
		ls, ok := lookup(c.set, name)
		if !ok {
			c.errorf("%s: metric %q is not registered by the manager", n, name)
			return map[string]bool{}
		}
		ls = cloneSet(ls)
		for _, l := range targetLabels {
			ls[l] = true
		}
		for _, m := range n.LabelMatchers {
			if m.Name != labels.MetricName && !ls[m.Name] {
				c.errorf("%s: %s has no label %q", n, name, m.Name)
			}
		}
		return ls
	case *parser.MatrixSelector:
		return c.labelsOf(n.VectorSelector)
	case *parser.SubqueryExpr:
		return c.labelsOf(n.Expr)
	case *parser.ParenExpr:
		return c.labelsOf(n.Expr)
	case *parser.UnaryExpr:
		return c.labelsOf(n.Expr)
	case *parser.StepInvariantExpr:
		return c.labelsOf(n.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return map[string]bool{}
	case *parser.AggregateExpr:
		in := c.labelsOf(n.Expr)
		if n.Param != nil {
			c.labelsOf(n.Param)
		}
		for _, l := range n.Grouping {
			if !in[l] {
				c.errorf("%s: grouping label %q is not a label of %s", n, l, n.Expr)
			}
		}
		switch {
		case n.Without:
			out := cloneSet(in)
			for _, l := range n.Grouping {
				delete(out, l)
			}
			return out
		case n.Op == parser.TOPK || n.Op == parser.BOTTOMK || n.Op == parser.LIMITK || n.Op == parser.LIMIT_RATIO:
			return in
		}
		out := map[string]bool{}
		for _, l := range n.Grouping {
			out[l] = true
		}
		if s, ok := n.Param.(*parser.StringLiteral); ok && n.Op == parser.COUNT_VALUES {
			out[s.Val] = true
		}
		return out
	case *parser.Call:
		var first map[string]bool
		args := make([]map[string]bool, len(n.Args))
		for i, a := range n.Args {
			args[i] = c.labelsOf(a)
			if first == nil && (a.Type() == parser.ValueTypeVector || a.Type() == parser.ValueTypeMatrix) {
				first = args[i]
			}
		}
		switch n.Func.Name {
		case "histogram_quantile":
			if !args[1]["le"] {
				c.errorf("%s: the histogram argument has no \"le\" label (aggregate by le)", n)
			}
			out := cloneSet(args[1])
			delete(out, "le")
			return out
		case "label_replace", "label_join":
			out := cloneSet(args[0])
			out[n.Args[1].(*parser.StringLiteral).Val] = true
			return out
		case "absent", "absent_over_time", "time", "vector", "scalar":
			return map[string]bool{}
		}
		if first == nil {
			return map[string]bool{}
		}
		return first
	case *parser.BinaryExpr:
		l, r := c.labelsOf(n.LHS), c.labelsOf(n.RHS)
		lv, rv := n.LHS.Type() == parser.ValueTypeVector, n.RHS.Type() == parser.ValueTypeVector
		switch {
		case lv && rv:
			vm := n.VectorMatching
			for _, m := range vm.MatchingLabels {
				if vm.On && (!l[m] || !r[m]) {
					c.errorf("%s: on(%s): both sides must have the label", n, m)
				}
			}
			one := r
			if vm.Card == parser.CardOneToMany {
				one = l
			}
			for _, m := range vm.Include {
				if !one[m] {
					c.errorf("%s: group_left/right(%s): the other side has no such label", n, m)
				}
			}
			switch {
			case n.Op == parser.LOR:
				out := cloneSet(l)
				for k := range r {
					out[k] = true
				}
				return out
			case n.Op == parser.LAND || n.Op == parser.LUNLESS:
				return l
			case vm.Card == parser.CardOneToOne && vm.On:
				out := map[string]bool{}
				for _, m := range vm.MatchingLabels {
					out[m] = true
				}
				return out
			case vm.Card == parser.CardOneToMany:
				out := cloneSet(r)
				for _, m := range vm.Include {
					out[m] = true
				}
				return out
			}
			out := cloneSet(l)
			for _, m := range vm.Include {
				out[m] = true
			}
			return out
		case lv:
			return l
		case rv:
			return r
		}
		return map[string]bool{}
	}
	c.errorf("%s: unexpected node %T", e, e)
	return map[string]bool{}
}

// checkExpr parses expr and checks its metrics and labels; it returns the labels of its
// result and the metric names it reads.
func checkExpr(t *testing.T, what, expr string) (map[string]bool, map[string]bool) {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", what, err, expr)
		return nil, nil
	}
	c := &checker{set: registered(t), names: map[string]bool{}}
	out := c.labelsOf(e)
	for _, msg := range c.errs {
		t.Errorf("%s: %s", what, msg)
	}
	return out, c.names
}

// ---- the rendered component ----

var (
	renderedOnce sync.Once
	rendered     []map[string]any
	renderedErr  error
)

// render builds config/default with the monitoring component added, as the
// commented-out `components:` entry of config/default/kustomization.yaml does.
func render(t *testing.T) []map[string]any {
	t.Helper()
	renderedOnce.Do(func() { rendered, renderedErr = build() })
	if renderedErr != nil {
		t.Fatalf("kustomize build of config/default with %s: %v", componentDir, renderedErr)
	}
	return rendered
}

func build() ([]map[string]any, error) {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "monitoring-overlay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	raw, err := os.ReadFile(filepath.Join(root, "config/default/kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k map[string]any
	if err := yaml.Unmarshal(raw, &k); err != nil {
		return nil, err
	}
	// kustomize takes only relative paths to other kustomizations
	rel := func(p string) (string, error) {
		return filepath.Rel(dir, filepath.Join(root, "config/default", p))
	}
	for _, key := range []string{"resources", "components"} {
		entries, _ := k[key].([]any)
		for i, e := range entries {
			if entries[i], err = rel(e.(string)); err != nil {
				return nil, err
			}
		}
		k[key] = entries
	}
	comp, err := rel("../components/monitoring")
	if err != nil {
		return nil, err
	}
	if !slices.Contains(k["components"].([]any), any(comp)) {
		k["components"] = append(k["components"].([]any), comp)
	}
	out, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), out, 0o644); err != nil {
		return nil, err
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	var objs []map[string]any
	for _, r := range m.Resources() {
		o, err := r.Map()
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

func find(t *testing.T, kind string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, o := range render(t) {
		if o["kind"] == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("the rendered component has %d %s objects, want 1", len(found), kind)
	}
	return found[0]
}

func field(o map[string]any, path ...string) any {
	var v any = o
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

// ruleGroups loads the rendered PrometheusRule's groups with Prometheus' rule loader.
func ruleGroups(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	spec, err := yaml.Marshal(field(find(t, "PrometheusRule"), "spec"))
	if err != nil {
		t.Fatal(err)
	}
	rgs, errs := rulefmt.Parse(spec, false, model.LegacyValidation, promql, promslog.NewNopLogger())
	for _, err := range errs {
		t.Errorf("rulefmt: %v", err)
	}
	if rgs == nil || t.Failed() {
		t.FailNow()
	}
	return rgs
}

func alerts(t *testing.T) map[string]rulefmt.Rule {
	t.Helper()
	out := map[string]rulefmt.Rule{}
	for _, g := range ruleGroups(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if _, dup := out[r.Alert]; dup {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			out[r.Alert] = r
		}
	}
	return out
}

// ---- tests ----

func TestMonitoringComponentRenders(t *testing.T) {
	dep := find(t, "Deployment")
	ns := field(dep, "metadata", "namespace")
	for _, kind := range []string{"PrometheusRule", "ServiceMonitor", "ConfigMap"} {
		if got := field(find(t, kind), "metadata", "namespace"); got != ns {
			t.Errorf("%s is in namespace %v, the manager in %v", kind, got, ns)
		}
	}
	cm := find(t, "ConfigMap")
	if v := field(cm, "metadata", "labels", "grafana_dashboard"); v != "1" {
		t.Errorf("dashboard ConfigMap label grafana_dashboard = %v, want \"1\" (the Grafana sidecar's default)", v)
	}
	file, err := os.ReadFile(filepath.Join(repoRoot, componentDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if field(cm, "data", dashboardKey) != string(file) {
		t.Errorf("the ConfigMap's %s is not %s/grafana-dashboard.json", dashboardKey, componentDir)
	}

	// The ServiceMonitor must select the metrics Service and name its port.
	sm := find(t, "ServiceMonitor")
	sel, _ := field(sm, "spec", "selector", "matchLabels").(map[string]any)
	port := field(sm, "spec", "endpoints").([]any)[0].(map[string]any)["port"]
	var scraped []string
	for _, o := range render(t) {
		if o["kind"] != "Service" {
			continue
		}
		lbls, _ := field(o, "metadata", "labels").(map[string]any)
		match := len(sel) > 0
		for k, v := range sel {
			match = match && lbls[k] == v
		}
		ports, _ := field(o, "spec", "ports").([]any)
		for _, p := range ports {
			if match && p.(map[string]any)["name"] == port {
				scraped = append(scraped, field(o, "metadata", "name").(string))
			}
		}
	}
	if len(scraped) != 1 || !strings.HasSuffix(scraped[0], "metrics") {
		t.Errorf("the ServiceMonitor scrapes port %v of services %v, want the metrics Service only", port, scraped)
	}
	if field(sm, "spec", "endpoints").([]any)[0].(map[string]any)["honorLabels"] != true {
		t.Errorf("the ServiceMonitor must honor the metrics' namespace label (honorLabels: true)")
	}
}

// TestAlertRules loads the rules as Prometheus does and checks each alert's metrics,
// labels, severity and runbook.
func TestAlertRules(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs/metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ +(.+)$`).FindAllStringSubmatch(string(doc), -1) {
		anchors[githubAnchor(m[1])] = true
	}
	as := alerts(t)
	if len(as) == 0 {
		t.Fatal("no alerts")
	}
	labelRef := regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
	for name, r := range as {
		out, _ := checkExpr(t, name, r.Expr)
		switch r.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("%s: severity %q, want critical, warning or info", name, r.Labels["severity"])
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", name, a)
			}
		}
		for _, text := range r.Annotations {
			for _, m := range labelRef.FindAllStringSubmatch(text, -1) {
				if out != nil && !out[m[1]] {
					t.Errorf("%s: an annotation uses $labels.%s, which the expression's result does not carry", name, m[1])
				}
			}
		}
		// The runbook shows the rule's expression: the same expression, however laid out.
		if m := regexp.MustCompile("(?s)\n### " + name + "\n\n```promql\n(.*?)```").FindStringSubmatch(string(doc)); m == nil {
			t.Errorf("%s: docs/metrics.md has no section \"### %s\" opening with its expression", name, name)
		} else if a, b := canonical(t, r.Expr), canonical(t, m[1]); a != b {
			t.Errorf("%s: the runbook's expression\n  %s\nis not the rule's\n  %s", name, b, a)
		}
		u := r.Annotations["runbook_url"]
		const prefix = "https://github.com/scim-operator/scim-operator/blob/main/docs/metrics.md#"
		if anchor, ok := strings.CutPrefix(u, prefix); !ok || !anchors[anchor] || anchor != strings.ToLower(name) {
			t.Errorf("%s: runbook_url %q is not %s%s, a section of docs/metrics.md", name, u, prefix, strings.ToLower(name))
		}
	}
}

func canonical(t *testing.T, expr string) string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%v\n%s", err, expr)
		return ""
	}
	return e.String()
}

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// alertCase is one evaluation of an alert: series in promqltest's load notation at a 1m
// interval from time 0, the rule evaluated every minute up to at, and the labels of each
// alert that must then be firing (none: the alert must be silent).
type alertCase struct {
	name   string
	alert  string
	series string
	at     time.Duration
	firing []map[string]string
	// describe: text every firing alert's description must contain.
	describe string
}

var alertCases = []alertCase{
	{
		name: "5xx above 5%", alert: "ScimRequestErrors", at: 20 * time.Minute,
		series: `
scim_requests_total{config="team-a/okta",method="POST",resource="Users",code="201"} 0+60x30
scim_requests_total{config="team-a/okta",method="POST",resource="Users",code="500"} 0+10x30
scim_requests_total{method="GET",resource="Users",code="401"} 0+1x30`,
		firing:   []map[string]string{{"severity": "critical"}},
		describe: "failed with a 5xx status",
	},
	{
		name: "5xx below 5%", alert: "ScimRequestErrors", at: 20 * time.Minute,
		series: `
scim_requests_total{config="team-a/okta",method="POST",resource="Users",code="201"} 0+60x30
scim_requests_total{config="team-a/okta",method="POST",resource="Users",code="503"} 0+1x30`,
	},
	{
		name: "3 failed authentications a minute", alert: "ScimAuthFailures", at: 30 * time.Minute,
		series: `
scim_requests_total{method="GET",resource="Users",code="401"} 0+3x40
scim_requests_total{config="team-a/okta",method="GET",resource="Users",code="200"} 0+100x40`,
		firing: []map[string]string{{"severity": "warning"}},
	},
	{
		name: "a failed authentication every 2 minutes", alert: "ScimAuthFailures", at: 30 * time.Minute,
		series: `
scim_requests_total{method="GET",resource="Users",code="401"} 0+0.5x40
scim_requests_total{config="team-a/okta",method="GET",resource="Users",code="403"} 0+50x40`,
	},
	{
		name: "throttled on a config", alert: "ScimAuthThrottled", at: 20 * time.Minute,
		series: `
scim_auth_throttled_total{namespace="team-a",config="okta"} 0+2x20`,
		firing:   []map[string]string{{"namespace": "team-a", "config": "okta", "severity": "warning"}},
		describe: "ScimConfig team-a/okta",
	},
	{
		name: "throttled on unknown configs", alert: "ScimAuthThrottled", at: 20 * time.Minute,
		series: `
scim_auth_throttled_total{namespace="",config=""} 0+1x20`,
		firing:   []map[string]string{{"severity": "warning"}},
		describe: "paths that name no existing ScimConfig",
	},
	{
		name: "throttling long over", alert: "ScimAuthThrottled", at: 20 * time.Minute,
		series: `
scim_auth_throttled_total{namespace="team-a",config="okta"} 5+0x20`,
	},
	{
		name: "a member not Ready for 45 minutes", alert: "ScimMembersNotReady", at: 45 * time.Minute,
		series: `
scim_operator_members_not_ready_oldest_timestamp_seconds{namespace="team-a",config="okta",reason="InvalidCredentials"} 0+0x60
scim_operator_members_not_ready_oldest_timestamp_seconds{namespace="team-a",config="okta",reason="RateLimited"} 2400+0x60
scim_operator_members_not_ready_oldest_timestamp_seconds{namespace="team-b",config="paused",reason="Paused"} 0+0x60`,
		firing:   []map[string]string{{"namespace": "team-a", "config": "okta", "reason": "InvalidCredentials", "severity": "warning"}},
		describe: "have not been Ready for 45m",
	},
	{
		name: "members not Ready for 20 minutes, or paused", alert: "ScimMembersNotReady", at: 45 * time.Minute,
		series: `
scim_operator_members_not_ready_oldest_timestamp_seconds{namespace="team-a",config="okta",reason="BackendNotReady"} 1500+0x60
scim_operator_members_not_ready_oldest_timestamp_seconds{namespace="team-b",config="paused",reason="Paused"} 0+0x60`,
	},
	{
		name: "no full pass for an hour with a 10m resync", alert: "ScimDriftPassOverdue", at: 60 * time.Minute,
		series: `
scim_operator_last_full_sync_timestamp_seconds{namespace="team-a",config="okta"} 0+0x70
scim_operator_resync_interval_seconds{namespace="team-a",config="okta"} 600+0x70
scim_operator_config_enabled{namespace="team-a",config="okta"} 1+0x70
scim_operator_last_full_sync_timestamp_seconds{namespace="team-b",config="paused"} 0+0x70
scim_operator_resync_interval_seconds{namespace="team-b",config="paused"} 600+0x70
scim_operator_config_enabled{namespace="team-b",config="paused"} 0+0x70
scim_operator_last_full_sync_timestamp_seconds{namespace="team-c",config="fresh"} 0+60x70
scim_operator_resync_interval_seconds{namespace="team-c",config="fresh"} 600+0x70
scim_operator_config_enabled{namespace="team-c",config="fresh"} 1+0x70
scim_operator_last_full_sync_timestamp_seconds{namespace="team-d",config="hourly"} 0+0x70
scim_operator_resync_interval_seconds{namespace="team-d",config="hourly"} 3600+0x70
scim_operator_config_enabled{namespace="team-d",config="hourly"} 1+0x70`,
		firing:   []map[string]string{{"namespace": "team-a", "config": "okta", "severity": "warning"}},
		describe: "ScimConfig team-a/okta",
	},
	{
		// The first full pass never completes: there is no last_full_sync series at all, and
		// the config's creation time is the yardstick. A config created recently, and a
		// disabled one, stay silent.
		name: "no full pass ever, created an hour ago", alert: "ScimDriftPassOverdue", at: 60 * time.Minute,
		series: `
scim_operator_config_created_timestamp_seconds{namespace="team-a",config="stuck"} 0+0x70
scim_operator_resync_interval_seconds{namespace="team-a",config="stuck"} 600+0x70
scim_operator_config_enabled{namespace="team-a",config="stuck"} 1+0x70
scim_operator_config_created_timestamp_seconds{namespace="team-b",config="new"} 3000+0x70
scim_operator_resync_interval_seconds{namespace="team-b",config="new"} 600+0x70
scim_operator_config_enabled{namespace="team-b",config="new"} 1+0x70
scim_operator_config_created_timestamp_seconds{namespace="team-c",config="paused"} 0+0x70
scim_operator_resync_interval_seconds{namespace="team-c",config="paused"} 600+0x70
scim_operator_config_enabled{namespace="team-c",config="paused"} 0+0x70`,
		firing:   []map[string]string{{"namespace": "team-a", "config": "stuck", "severity": "warning"}},
		describe: "ScimConfig team-a/stuck",
	},
	{
		name: "full passes on time", alert: "ScimDriftPassOverdue", at: 60 * time.Minute,
		series: `
scim_operator_last_full_sync_timestamp_seconds{namespace="team-a",config="okta"} 0+60x70
scim_operator_resync_interval_seconds{namespace="team-a",config="okta"} 600+0x70
scim_operator_config_enabled{namespace="team-a",config="okta"} 1+0x70`,
	},
	{
		name: "Docker Hub rate limited for an hour", alert: "ScimBackendRateLimited", at: 120 * time.Minute,
		series: `
scim_backend_calls_total{backend="dockerhub",op="EnsureMember",result="success"} 0+10x60 600+0x60
scim_backend_calls_total{backend="dockerhub",op="EnsureMember",result="rate_limited"} 0+0x60 0+5x60`,
		firing:   []map[string]string{{"backend": "dockerhub", "severity": "warning"}},
		describe: "dockerhub backend",
	},
	{
		name: "Docker Hub rate limited for 40 minutes", alert: "ScimBackendRateLimited", at: 100 * time.Minute,
		series: `
scim_backend_calls_total{backend="dockerhub",op="EnsureMember",result="success"} 0+10x60 600+0x60
scim_backend_calls_total{backend="dockerhub",op="EnsureMember",result="rate_limited"} 0+0x60 0+5x60`,
	},
	{
		name: "an occasional 429", alert: "ScimBackendRateLimited", at: 120 * time.Minute,
		series: `
scim_backend_calls_total{backend="dockerhub",op="EnsureMember",result="success"} 0+10x120
scim_backend_calls_total{backend="dockerhub",op="ObserveMember",result="rate_limited"} 0+1x120`,
	},
}

// TestAlertsFire evaluates every alert with Prometheus' rule engine over synthetic series.
func TestAlertsFire(t *testing.T) {
	as := alerts(t)
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, c := range alertCases {
		if len(c.firing) > 0 {
			fires[c.alert] = true
		} else {
			silent[c.alert] = true
		}
	}
	for name := range as {
		if !fires[name] || !silent[name] {
			t.Errorf("alert %s needs a case in which it fires and one in which it stays silent", name)
		}
	}
	for _, c := range alertCases {
		t.Run(c.alert+"/"+c.name, func(t *testing.T) {
			r, ok := as[c.alert]
			if !ok {
				t.Fatalf("no alert %s in the PrometheusRule", c.alert)
			}
			// The series must be what the manager exports, or the case proves nothing.
			for _, line := range strings.Split(strings.TrimSpace(c.series), "\n") {
				sel, _, _ := strings.Cut(line, " ")
				checkExpr(t, "series "+sel, sel)
			}
			got := evalAlert(t, r, c.series, c.at)
			var gotLabels []string
			for _, a := range got {
				gotLabels = append(gotLabels, a.Labels.String())
				if d := a.Annotations.Get("description"); !strings.Contains(d, c.describe) {
					t.Errorf("description %q does not contain %q", d, c.describe)
				}
				a.Annotations.Range(func(l labels.Label) {
					if strings.Contains(l.Value, "error expanding template") {
						t.Errorf("annotation %s: %s", l.Name, l.Value)
					}
				})
			}
			sort.Strings(gotLabels)
			if len(got) != len(c.firing) {
				t.Fatalf("at %s: %d alerts firing %v, want %d %v", c.at, len(got), gotLabels, len(c.firing), c.firing)
			}
			for _, want := range c.firing {
				matched := false
				for _, a := range got {
					ok := a.Labels.Get("alertname") == c.alert
					for k, v := range want {
						ok = ok && a.Labels.Get(k) == v
					}
					matched = matched || ok
				}
				if !matched {
					t.Errorf("at %s: no firing alert with labels %v among %v", c.at, want, gotLabels)
				}
			}
		})
	}
}

// evalAlert runs rule every minute from 0 to at over series, the way a Prometheus rule
// group does, and returns the alerts firing at the end.
func evalAlert(t *testing.T, r rulefmt.Rule, series string, at time.Duration) []*rules.Alert {
	t.Helper()
	var load strings.Builder
	load.WriteString("load 1m\n")
	for _, line := range strings.Split(strings.TrimSpace(series), "\n") {
		load.WriteString("  " + line + "\n") // promqltest wants the series indented
	}
	storage := promqltest.LoadedStorage(t, load.String())
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	expr, err := promql.ParseExpr(r.Expr)
	if err != nil {
		t.Fatal(err)
	}
	rule := rules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
		labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", true, promslog.NewNopLogger())
	query := rules.EngineQueryFunc(engine, storage)
	for ts := time.Duration(0); ts <= at; ts += time.Minute {
		if _, err := rule.Eval(context.Background(), 0, time.Unix(0, 0).Add(ts), query, nil, 0); err != nil {
			t.Fatalf("evaluating %s at %s: %v", r.Alert, ts, err)
		}
	}
	var firing []*rules.Alert
	for _, a := range rule.ActiveAlerts() {
		if a.State == rules.StateFiring {
			firing = append(firing, a)
		}
	}
	return firing
}

// grafanaVar matches $name, ${name} and ${name:format}.
var grafanaVar = regexp.MustCompile(`\$(?:\{([A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\}|([A-Za-z0-9_]+))`)

// TestGrafanaDashboard checks the dashboard as Grafana would read it and every PromQL
// target against the registered metrics.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, componentDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json is not valid JSON: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("the dashboard needs a uid and a title")
	}

	// Grafana's built-in interval variables become a range; the dashboard's own
	// variables match everything.
	values := map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
	for _, v := range dash.Templating.List {
		switch v.Type {
		case "datasource":
			values[v.Name] = "prometheus"
		case "query":
			values[v.Name] = ".*"
			q := v.Query
			if m, ok := q.(map[string]any); ok {
				q = m["query"]
			}
			lv := regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`).FindStringSubmatch(q.(string))
			if lv == nil {
				t.Errorf("variable %s: query %v is not label_values(selector, label)", v.Name, v.Query)
				continue
			}
			ls, _ := checkExpr(t, "variable "+v.Name, substitute(t, lv[1], values))
			if ls != nil && !ls[lv[2]] {
				t.Errorf("variable %s: %s has no label %q", v.Name, lv[1], lv[2])
			}
		default:
			values[v.Name] = ".*"
		}
	}

	ids := map[int]bool{}
	used := map[string]bool{}
	targets := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d is used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource %q, want ${datasource}", p.Title, p.Datasource.UID)
			}
			for _, tg := range p.Targets {
				targets++
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q target %s: no expr", p.Title, tg.RefID)
					continue
				}
				_, names := checkExpr(t, fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), substitute(t, tg.Expr, values))
				for n := range names {
					used[n] = true
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	if targets == 0 {
		t.Fatal("the dashboard has no targets")
	}
	// What the dashboard is for: requests by status, latency, auth failures and
	// throttles, members by phase and not Ready, reconciles, backend calls and latency,
	// last full sync age.
	for _, m := range []string{
		"scim_requests_total", "scim_request_duration_seconds_bucket", "scim_auth_throttled_total",
		"scim_operator_members", "scim_operator_members_not_ready", "scim_operator_reconciles_total",
		"scim_backend_calls_total", "scim_backend_call_duration_seconds_bucket",
		"scim_operator_last_full_sync_timestamp_seconds",
	} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func substitute(t *testing.T, expr string, values map[string]string) string {
	t.Helper()
	return grafanaVar.ReplaceAllStringFunc(expr, func(s string) string {
		m := grafanaVar.FindStringSubmatch(s)
		name := m[1] + m[2]
		v, ok := values[name]
		if !ok {
			t.Errorf("%s: variable $%s is not defined by the dashboard", expr, name)
		}
		return v
	})
}

// TestMetricsDocumented checks docs/metrics.md against the registry: every metric the
// operator defines is documented, and every metric the document names is registered.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs/metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	set := registered(t)
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:scim|controller_runtime|workqueue|rest_client|leader_election|certwatcher|process|go)_[a-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1) {
		named[m[1]] = true
		if _, ok := lookup(set, m[1]); !ok {
			t.Errorf("docs/metrics.md names %s, which the manager does not register", m[1])
		}
	}
	for name := range set {
		if strings.HasPrefix(name, "scim_") && !named[name] {
			t.Errorf("%s is registered but not documented in docs/metrics.md", name)
		}
	}
	// The document's example queries are checked like the rules.
	for _, block := range regexp.MustCompile("(?s)```promql\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		var expr strings.Builder
		flush := func() {
			if q := strings.TrimSpace(expr.String()); q != "" {
				checkExpr(t, "docs/metrics.md", q)
			}
			expr.Reset()
		}
		for _, line := range strings.Split(block[1], "\n") {
			switch {
			case strings.HasPrefix(line, "#"):
				flush()
			case strings.HasPrefix(line, " ") || strings.HasPrefix(line, "and ") || strings.HasPrefix(line, ")"):
				expr.WriteString("\n" + line) // continuation
			default:
				flush()
				expr.WriteString(line)
			}
		}
		flush()
	}
}
