package e2e

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/membership"
)

var _ = Describe("faults survived end to end: the API server down", Label("faults"), func() {
	It("answers 503 with Retry-After while kube-apiserver and etcd are stopped for 15 s, recovers by itself, and leaves nothing half-written", func() {
		outage := 15 * time.Second
		plane := startOwnPlane()
		ns := plane.namespace()
		m, _ := plane.startManager("[faults-apiserver] ", nil)
		org := newHubOrg(plane.cluster.Client, ns, 6000)
		base := m.SCIMURL + org.cfg.Status.BasePath
		idp := newFaultIdP(func() string { return base }, org.token)

		By("ten users for the traffic to change and to put in groups")
		pre := idpUsers("pre", 10)
		for i := range pre {
			pre[i].active = true
		}
		Expect(idp.pushAll(pre, 4, 0, time.Now().Add(time.Minute), &counter{})).To(Succeed())
		preIDs := map[string]string{}
		idp.mu.Lock()
		for _, u := range pre {
			preIDs[u.userName] = idp.created[fold(u.userName)]
		}
		idp.mu.Unlock()

		By("SCIM traffic from four connections: creates, changes, groups and lookups")
		var mu sync.Mutex
		sentUsers := map[string]idpUser{}   // every userName POSTed, with what was sent
		sentGroups := map[string][]string{} // displayName -> member ids POSTed
		groupCodes := map[string]int{}      // displayName -> the POST's answer
		userCodes := map[string]int{}       // userName -> the POST's answer
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					switch i % 4 {
					case 0:
						u := idpUser{userName: fmt.Sprintf("during-%d-%04d@example.com", w, i), active: i%8 != 4}
						mu.Lock()
						sentUsers[u.userName] = u
						mu.Unlock()
						code, _, _, _ := idp.post(u)
						mu.Lock()
						userCodes[u.userName] = code
						mu.Unlock()
					case 1:
						u := pre[(w*7+i)%len(pre)]
						idp.call("PATCH", "/Users/"+preIDs[u.userName], fmt.Sprintf(
							`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"Person %d-%d"}]}`, w, i))
					case 2:
						name := fmt.Sprintf("team-%d-%04d", w, i)
						var ids, vals []string
						for k := 0; k < 5; k++ {
							id := preIDs[pre[(w+i+k)%len(pre)].userName]
							ids = append(ids, id)
							vals = append(vals, fmt.Sprintf(`{"value":%q}`, id))
						}
						mu.Lock()
						sentGroups[name] = ids
						mu.Unlock()
						code, _, _, _ := idp.call("POST", "/Groups", fmt.Sprintf(
							`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":%q,"members":[%s]}`, name, strings.Join(vals, ",")))
						mu.Lock()
						groupCodes[name] = code
						mu.Unlock()
					default:
						idp.lookup(pre[(w+i)%len(pre)].userName)
					}
					time.Sleep(400 * time.Millisecond)
				}
			}()
		}

		time.Sleep(3 * time.Second)
		By(fmt.Sprintf("stopping kube-apiserver and etcd for %s", outage))
		downAt := time.Now()
		Expect(plane.stop()).To(Succeed())
		stoppedAt := time.Now()
		time.Sleep(outage)
		By("starting etcd and kube-apiserver again, same data, same address")
		startAt := time.Now()
		Expect(plane.start()).To(Succeed())
		upAt := time.Now()
		// what the stop cut, as the API server holds it before the manager can finish
		// anything: membership changes committed and not finished, and members carrying
		// marks (of those, or of changes that never committed)
		cutChanges, markedMembers := 0, 0
		Eventually(func() error {
			var gl scimv1.OrgGroupList
			var ml scimv1.OrgMemberList
			if err := plane.cluster.Client.List(ctx, &gl, client.InNamespace(ns)); err != nil {
				return err
			}
			if err := plane.cluster.Client.List(ctx, &ml, client.InNamespace(ns)); err != nil {
				return err
			}
			cutChanges, markedMembers = 0, 0
			for i := range gl.Items {
				if membership.Unfinished(&gl.Items[i]) != "" {
					cutChanges++
				}
			}
			for i := range ml.Items {
				if len(index.ChangesOf(ml.Items[i].Labels)) > 0 {
					markedMembers++
				}
			}
			return nil
		}, time.Minute, 100*time.Millisecond).Should(Succeed())

		By("the endpoint recovers by itself: a create answers 201 again")
		var recoveredAt time.Time
		probe := 0
		Eventually(func() int {
			probe++
			u := idpUser{userName: fmt.Sprintf("probe-%04d@example.com", probe), active: true}
			mu.Lock()
			sentUsers[u.userName] = u
			mu.Unlock()
			code, _, _, _ := idp.post(u)
			mu.Lock()
			userCodes[u.userName] = code
			mu.Unlock()
			if code == 201 {
				recoveredAt = time.Now()
			}
			return code
		}, 2*time.Minute, 500*time.Millisecond).Should(Equal(201))
		select {
		case err := <-m.Done():
			Fail(fmt.Sprintf("the manager exited: %v", err))
		default:
		}
		time.Sleep(3 * time.Second) // traffic after the recovery too
		close(stop)
		wg.Wait()

		By("every answer was a SCIM answer in time: 503 with Retry-After for what needed the API server, never 500")
		idp.mu.Lock()
		calls := append([]idpCall(nil), idp.calls...)
		idp.mu.Unlock()
		var bad []string
		refused, slowest := 0, time.Duration(0)
		firstRefused, lastRefused := time.Time{}, time.Time{}
		for _, c := range calls {
			slowest = max(slowest, c.took)
			when := fmt.Sprintf("[%+.1fs after the stop, %+.1fs after the start] ", c.start.Sub(downAt).Seconds(), c.start.Sub(upAt).Seconds())
			switch {
			case c.err != "":
				bad = append(bad, when+fmt.Sprintf("%s %s: no answer after %s: %s", c.method, c.path, c.took.Round(time.Millisecond), c.err))
			case c.code == 503:
				refused++
				if firstRefused.IsZero() {
					firstRefused = c.start
				}
				lastRefused = c.start
				if c.retryAfter == "" {
					bad = append(bad, when+fmt.Sprintf("%s %s: 503 without Retry-After", c.method, c.path))
				}
			case c.code >= 400:
				// (every name is sent once: a 409 would be a name held by nobody)
				bad = append(bad, when+fmt.Sprintf("%s %s: answered %d", c.method, c.path, c.code))
			}
		}
		Expect(bad).To(BeEmpty(), "%d of %d answers were not 2xx, 409 or 503 with Retry-After in time:\n%s",
			len(bad), len(calls), strings.Join(bad[:min(20, len(bad))], "\n"))
		Expect(refused).To(BeNumerically(">", 0), "writes were refused while the API server was down")

		By("nothing half-written: each user and group is all there or not there at all, as stored, at once")
		// A group's members are marked, committed by the group's write and then labelled
		// (package membership): readers see the whole change from the commit on, and the
		// labels follow once the API server answers.
		c := plane.cluster.Client
		mu.Lock()
		defer mu.Unlock()
		var groups scimv1.OrgGroupList
		// readers: the members a SCIM GET of the group answers
		readers := func(gid string) string {
			code, out, _, _ := idp.call("GET", "/Groups/"+gid, "")
			if code != 200 {
				return fmt.Sprintf("GET answered %d", code)
			}
			var ids []string
			ms, _ := out["members"].([]any)
			for _, m := range ms {
				id, _ := m.(map[string]any)["value"].(string)
				ids = append(ids, id)
			}
			return sorted(ids)
		}
		// stored: what every reader sees once its cache has caught up, read from the API
		// server: the labelled members, with the marks of the group's committed change
		// over them (package membership)
		stored := func(gid string) string {
			var g scimv1.OrgGroup
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: gid}, &g); err != nil {
				return err.Error()
			}
			var all scimv1.OrgMemberList
			Expect(c.List(ctx, &all, client.InNamespace(ns))).To(Succeed())
			var ids []string
			for i := range all.Items {
				if membership.In(&all.Items[i], &g) {
					ids = append(ids, all.Items[i].Name)
				}
			}
			return sorted(ids)
		}
		// labels: the members labelled as the group's
		labels := func(gid string) string { return groupMembers(c, ns, gid) }
		halfWritten := func(membersOf func(gid string) string) []string {
			var members scimv1.OrgMemberList
			Expect(c.List(ctx, &members, client.InNamespace(ns))).To(Succeed())
			var half []string
			seen := map[string]bool{}
			for _, om := range members.Items {
				seen[fold(om.Spec.UserName)] = true
				if strings.HasPrefix(om.Spec.UserName, "pre-") {
					continue
				}
				u, ok := sentUsers[om.Spec.UserName]
				local, _, _ := strings.Cut(u.userName, "@")
				switch {
				case !ok:
					half = append(half, om.Spec.UserName+": never sent")
				case om.Spec.Active != u.active || om.Spec.ExternalID != "ext-"+local || om.Spec.Name == nil ||
					om.Spec.Name.GivenName != "Given "+local || len(om.Spec.Emails) != 1 || om.Spec.DisplayName != "Person "+local:
					half = append(half, fmt.Sprintf("%s: not what was sent (answered %d): %+v", om.Spec.UserName, userCodes[u.userName], om.Spec))
				}
			}
			for name, code := range userCodes {
				if code == 201 && !seen[fold(name)] {
					half = append(half, name+": answered 201 and gone")
				}
			}
			Expect(c.List(ctx, &groups, client.InNamespace(ns))).To(Succeed())
			existing := map[string]bool{}
			for _, g := range groups.Items {
				if !g.DeletionTimestamp.IsZero() {
					continue
				}
				if existing[g.Spec.DisplayName] {
					half = append(half, "group "+g.Spec.DisplayName+": two groups")
				}
				existing[g.Spec.DisplayName] = true
				if have, want := membersOf(g.Name), sorted(sentGroups[g.Spec.DisplayName]); have != want {
					half = append(half, fmt.Sprintf("group %s (answered %d): members %v, sent %v", g.Spec.DisplayName, groupCodes[g.Spec.DisplayName], have, want))
				}
			}
			for name, code := range groupCodes {
				if code == 201 && !existing[name] {
					half = append(half, "group "+name+": answered 201 and gone")
				}
			}
			return half
		}
		checkedAfter := time.Since(upAt)
		half := halfWritten(stored)
		halfAtCheck := len(half)
		Expect(half).To(BeEmpty(), "half-written as stored, %s after the start", checkedAfter)
		// the manager's cache catches up: the SCIM answers show the same (its informers
		// reconnect one by one after the API server's restart, so a group may show
		// before its members do for a moment: stale, not half-written)
		Eventually(func() []string { return halfWritten(readers) }, time.Minute, time.Second).Should(BeEmpty())
		readersAfter := time.Since(upAt)
		// and the labels catch up (the finisher, for changes cut by the stop)
		Eventually(func() []string { return halfWritten(labels) }, time.Minute, time.Second).Should(BeEmpty())
		halfClearedAfter := time.Since(upAt)

		By("the IdP retries the refused groups (create; on 409 look up and set the members)")
		retryGroup := func(name string) int {
			var vals []string
			for _, id := range sentGroups[name] {
				vals = append(vals, fmt.Sprintf(`{"value":%q}`, id))
			}
			members := strings.Join(vals, ",")
			code, _, _, _ := idp.call("POST", "/Groups", fmt.Sprintf(
				`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":%q,"members":[%s]}`, name, members))
			if code != 409 {
				return code
			}
			code, out, _, _ := idp.call("GET", "/Groups?filter="+url.QueryEscape(fmt.Sprintf("displayName eq %q", name)), "")
			res, _ := out["Resources"].([]any)
			if code != 200 || len(res) != 1 {
				return code
			}
			id, _ := res[0].(map[string]any)["id"].(string)
			code, _, _, _ = idp.call("PATCH", "/Groups/"+id, fmt.Sprintf(
				`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"members","value":[%s]}]}`, members))
			if code == 200 {
				return 201
			}
			return code
		}
		var refusedGroups []string
		for name, code := range groupCodes {
			if code != 201 {
				refusedGroups = append(refusedGroups, name)
			}
		}
		work := make(chan string)
		var gwg sync.WaitGroup
		for w := 0; w < 4; w++ {
			gwg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer gwg.Done()
				for name := range work {
					Eventually(func() int { return retryGroup(name) }, time.Minute, time.Second).Should(Equal(201), name)
				}
			}()
		}
		for _, name := range refusedGroups {
			work <- name
		}
		close(work)
		gwg.Wait()
		for _, name := range refusedGroups {
			groupCodes[name] = 201
		}
		Expect(halfWritten(stored)).To(BeEmpty())
		Eventually(func() []string { return halfWritten(readers) }, time.Minute, time.Second).Should(BeEmpty())
		Eventually(func() []string { return halfWritten(labels) }, time.Minute, time.Second).Should(BeEmpty())

		By("the IdP retries what was refused (lookup, then create), and the backend follows")
		var retry []idpUser
		for name, code := range userCodes {
			if code != 201 {
				retry = append(retry, sentUsers[name])
			}
		}
		Expect(idp.pushAll(retry, 4, 0, time.Now().Add(2*time.Minute), &counter{})).To(Succeed())
		var all []idpUser
		for _, u := range sentUsers {
			all = append(all, u)
		}
		all = append(all, pre...)
		Eventually(org.converged, 3*time.Minute, time.Second).Should(BeEmpty())
		converge := time.Since(upAt)
		dups, dupDetail := org.duplicates(all)
		Expect(dupDetail).To(BeEmpty())
		lost, lostDetail := lostUsers(idp, org, all)
		Expect(lostDetail).To(BeEmpty())

		By("a clean end: every membership change finished, no member left with a mark")
		Eventually(func() []string {
			var gl scimv1.OrgGroupList
			var ml scimv1.OrgMemberList
			Expect(c.List(ctx, &gl, client.InNamespace(ns))).To(Succeed())
			Expect(c.List(ctx, &ml, client.InNamespace(ns))).To(Succeed())
			var left []string
			for i := range gl.Items {
				if id := membership.Unfinished(&gl.Items[i]); id != "" {
					left = append(left, "group "+gl.Items[i].Spec.DisplayName+": change "+id+" unfinished")
				}
			}
			for i := range ml.Items {
				for k := range ml.Items[i].Labels {
					if strings.HasPrefix(k, scimv1.LabelChangePrefix) || strings.HasPrefix(k, scimv1.LabelChangingPrefix) {
						left = append(left, ml.Items[i].Spec.UserName+": "+k)
					}
				}
			}
			return left
		}, time.Minute, time.Second).Should(BeEmpty())

		writes := 0
		for _, c := range calls {
			if c.method != "GET" {
				writes++
			}
		}
		faultFigures{spec: "apiserver-down", users: len(all), faults: 1, converge: converge, duplicates: dups, lost: lost,
			extra: []string{fmt.Sprintf("cut_at_restart=%d changes, %d marked members half_written_at_first_check=%d (%s after the start) scim_answers_current_after=%s labels_complete_after=%s ",
				cutChanges, markedMembers, halfAtCheck,
				checkedAfter.Round(100*time.Millisecond), readersAfter.Round(100*time.Millisecond), halfClearedAfter.Round(100*time.Millisecond)) + fmt.Sprintf("down=%s (stop %s, start %s) scim_calls=%d writes=%d answered_503=%d refused_for=%s recovered_after_start=%s slowest_answer=%s groups=%d",
				startAt.Sub(stoppedAt).Round(100*time.Millisecond), stoppedAt.Sub(downAt).Round(100*time.Millisecond), upAt.Sub(startAt).Round(100*time.Millisecond),
				len(calls), writes, refused, lastRefused.Sub(firstRefused).Round(100*time.Millisecond), recoveredAt.Sub(upAt).Round(100*time.Millisecond),
				slowest.Round(time.Millisecond), len(groups.Items))}}.print()
	})
})

// groupMembers is the sorted, comma-joined names of the OrgMembers labelled as members of
// the group named group (what the group's change leaves once finished).
func groupMembers(c client.Client, ns, group string) string {
	var got scimv1.OrgMemberList
	Expect(c.List(ctx, &got, client.InNamespace(ns), client.HasLabels{scimv1.LabelGroupPrefix + group})).To(Succeed())
	var names []string
	for _, om := range got.Items {
		names = append(names, om.Name)
	}
	return sorted(names)
}

func sorted(ss []string) string {
	ss = append([]string(nil), ss...)
	sort.Strings(ss)
	return strings.Join(ss, ",")
}
