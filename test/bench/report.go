package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// row is one line of the table: a figure measured in this run, the target for it
// and whether the run met it.
type row struct {
	Measure string             `json:"measure"`
	Size    int                `json:"size,omitempty"`
	Result  string             `json:"result"`
	Target  string             `json:"target,omitempty"`
	Verdict string             `json:"verdict,omitempty"` // met, MISSED, unsettled, or empty (no target)
	Figures map[string]float64 `json:"figures,omitempty"`
}

// report is what a run writes: the rows, the curve of latency against organization size,
// and the machine and versions it ran on.
type report struct {
	Meta   map[string]string  `json:"meta"`
	Flags  map[string]string  `json:"flags"`
	Rows   []row              `json:"rows"`
	Curves map[string][]point `json:"curves"` // name -> latency (ms) by organization size
}

type point struct {
	Size int     `json:"size"`
	MS   float64 `json:"ms"`
}

// unsettled is the verdict of a figure whose baseline did not hold: neither met nor missed.
const unsettled = "unsettled"

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func (r *report) add(x row) { r.Rows = append(r.Rows, x) }

func (r *report) curve(name string, size int, v float64) {
	if r.Curves == nil {
		r.Curves = map[string][]point{}
	}
	r.Curves[name] = append(r.Curves[name], point{Size: size, MS: v})
}

func (r *report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tmembers\tresult\ttarget\tverdict")
	fmt.Fprintln(tw, "-------\t-------\t------\t------\t-------")
	for _, x := range r.Rows {
		size := "-"
		if x.Size > 0 {
			size = fmt.Sprint(x.Size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.Measure, size, x.Result, dash(x.Target), dash(x.Verdict))
	}
	_ = tw.Flush()
	keys := make([]string, 0, len(r.Meta))
	for k := range r.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var meta []string
	for _, k := range keys {
		meta = append(meta, k+": "+r.Meta[k])
	}
	fmt.Fprintf(w, "\n%s\n", strings.Join(meta, "; "))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writeSVG draws the curves (latency in ms against organization size, size on a log
// scale) as a small standalone SVG: a few lines of markup, no charting library needed.
// A curve's point at size 0 (no members) has no place on a log scale: it is drawn as a
// dashed line across the chart, the level the curve starts from. The versions the run
// was measured with are printed under the title.
func (r *report) writeSVG(path string) error {
	const W, H, left, right, top, bottom = 640.0, 360.0, 60.0, 170.0, 44.0, 40.0
	names := make([]string, 0, len(r.Curves))
	minS, maxS, maxV := math.Inf(1), math.Inf(-1), 0.0
	for n, pts := range r.Curves {
		names = append(names, n)
		for _, p := range pts {
			if p.Size > 0 {
				minS, maxS = math.Min(minS, float64(p.Size)), math.Max(maxS, float64(p.Size))
			}
			maxV = math.Max(maxV, p.MS)
		}
	}
	sort.Strings(names)
	if len(names) == 0 || maxV == 0 || math.IsInf(minS, 1) {
		return nil
	}
	if minS == maxS {
		minS, maxS = minS/10, maxS*10
	}
	maxV = niceCeil(maxV)
	x := func(s int) float64 {
		return left + (math.Log10(float64(s))-math.Log10(minS))/(math.Log10(maxS)-math.Log10(minS))*(W-left-right)
	}
	y := func(v float64) float64 { return H - bottom - v/maxV*(H-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="13">%s</text>`+"\n", left, html.EscapeString("SCIM latency against organization size ("+r.Meta["cpus"]+" CPUs)"))
	fmt.Fprintf(&b, `<text x="%.0f" y="33" fill="#555">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf("commit %s, %s, kube-apiserver %s, %s layout, %s",
		r.Meta["commit"], r.Meta["go"], r.Meta["kube-apiserver"], r.Meta["grantLayout"], r.Meta["date"])))
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, H-bottom, W-right, H-bottom)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, H-bottom)
	for i := 0; i <= 4; i++ {
		v := maxV * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%g ms</text>`+"\n", left-4, y(v)+4, v)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#ddd"/>`+"\n", left, y(v), W-right, y(v))
	}
	sizes := map[int]bool{}
	for _, n := range names {
		for _, p := range r.Curves[n] {
			if p.Size > 0 {
				sizes[p.Size] = true
			}
		}
	}
	for s := range sizes {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%d</text>`+"\n", x(s), H-bottom+14, s)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">members</text>`+"\n", (left+W-right)/2, H-8)
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}
	for i, n := range names {
		pts := append([]point(nil), r.Curves[n]...)
		sort.Slice(pts, func(a, c int) bool { return pts[a].Size < pts[c].Size })
		c := colors[i%len(colors)]
		var path []string
		label := n
		for _, p := range pts {
			if p.Size <= 0 {
				fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s" stroke-dasharray="4 3"/>`+"\n", left, y(p.MS), W-right, y(p.MS), c)
				label = n + " (dashed: none)"
				continue
			}
			path = append(path, fmt.Sprintf("%.1f,%.1f", x(p.Size), y(p.MS)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(p.Size), y(p.MS), c)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(path, " "))
		ly := top + 14 + float64(i)*16
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"/>`+"\n", W-right+10, ly-4, W-right+28, ly-4, c)
		if label != n { // and the dashed level's own key
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-dasharray="4 3"/>`+"\n", W-right+10, ly+2, W-right+28, ly+2, c)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", W-right+32, ly, html.EscapeString(label))
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
