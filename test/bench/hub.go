package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/devenv"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// dockerHub measures drift repair against the Docker Hub emulator at its rate limit: for
// each size, an organization whose people are already members in Docker Hub when their
// OrgMembers appear, adopted (spec.policies.adoption: Adopt), then
//   - the calls one resync interval costs in steady state, and how long the pass takes
//     (first to last request of the interval);
//   - drift: -hub-drift members removed by hand in Docker Hub, and the time and calls until
//     every one of them is invited back.
func (b *bench) dockerHub(ctx context.Context) error {
	if len(b.o.hubSizes) == 0 {
		return nil
	}
	// Adopt: the people already in the organization are SCIM's from the start, so one of
	// them removed by hand is invited back (adoption off would leave them Preexisting, and
	// SCIM never touches those: the drift row would measure nothing).
	hub, err := devenv.StartHubWith(ctx, b.s.cluster.Client, b.s.ns, devenv.HubOptions{
		RateLimit: b.o.hubRate, ResyncInterval: b.o.hubResync.String(), Adoption: scimv1.AdoptionAdopt})
	if err != nil {
		return err
	}
	defer hub.Stop()
	if _, err := devenv.WaitReady(ctx, b.s.cluster.Client, hub.Config, 2*time.Minute); err != nil {
		return err
	}
	emu, cfg := hub.Emulator, hub.Config.Name
	have := 0
	for _, size := range b.o.hubSizes {
		say("  Docker Hub organization of %d members (emulator at %d requests a minute, resync %s)", size, b.o.hubRate, b.o.hubResync)
		for i := have; i < size; i++ {
			emu.AddMember(fmt.Sprintf("hubuser%06d", i), hubUser(i), "member")
		}
		if err := parallel(size-have, 32, func(i int) error {
			return b.s.cluster.Client.Create(ctx, rawMember(b.s.ns, cfg, hubUser(have+i), true))
		}); err != nil {
			return err
		}
		have = size
		took, ok := b.s.settleOf(ctx, cfg, b.o.settle, size, say)
		res := fmt.Sprintf("all %d Active after %s", size, took.Round(time.Second))
		if !ok {
			res = fmt.Sprintf("NOT all Active after -settle %s", b.o.settle)
		}
		b.rep.add(row{Measure: "Docker Hub: members already in the organization adopted", Size: size, Result: res,
			Figures: map[string]float64{"settle_s": took.Seconds(), "calls": float64(len(emu.Requests()))}})

		// steady state: one interval, nothing changed
		emu.ResetLog()
		first, last := watchCalls(ctx, emu.Requests, b.o.hubResync)
		calls := len(emu.Requests())
		pass := time.Duration(0)
		if calls > 0 {
			pass = last.Sub(first)
		}
		budget := int(float64(b.o.hubRate) * b.o.hubResync.Minutes())
		b.rep.add(row{Measure: fmt.Sprintf("Docker Hub calls in one resync interval (%s), nothing changed", b.o.hubResync), Size: size,
			Result: fmt.Sprintf("%d calls (budget %d); the pass took %s", calls, budget, pass.Round(time.Millisecond)),
			Target: "pass fits the interval at the rate limit", Verdict: verdict(calls <= budget && pass < b.o.hubResync),
			Figures: map[string]float64{"calls": float64(calls), "budget": float64(budget), "pass_s": pass.Seconds()}})

		// drift: people removed by hand in Docker Hub are invited back
		k := min(b.o.hubDrift, size)
		emu.ResetLog()
		t0 := time.Now()
		for i := range k {
			emu.RemoveMember(fmt.Sprintf("hubuser%06d", i))
		}
		repaired := false
		for time.Since(t0) < 3*b.o.hubResync+time.Minute && !repaired {
			invited := map[string]bool{}
			for _, inv := range emu.Invites() {
				invited[strings.ToLower(inv.Invitee)] = true
			}
			repaired = true
			for i := range k {
				if !invited[hubUser(i)] && !emu.IsMember(fmt.Sprintf("hubuser%06d", i)) {
					repaired = false
				}
			}
			if !repaired {
				time.Sleep(200 * time.Millisecond)
			}
		}
		took = time.Since(t0)
		res = fmt.Sprintf("%d removed by hand: all invited back after %s, %d calls", k, took.Round(time.Second), len(emu.Requests()))
		if !repaired {
			res = fmt.Sprintf("%d removed by hand: NOT all invited back after %s (%d calls)", k, took.Round(time.Second), len(emu.Requests()))
		}
		b.rep.add(row{Measure: "Docker Hub drift repair", Size: size, Result: res,
			Target: "within one interval", Verdict: verdict(repaired && took <= b.o.hubResync+30*time.Second),
			Figures: map[string]float64{"repair_s": took.Seconds(), "calls": float64(len(emu.Requests())), "drifted": float64(k)}})
		// the removed people come back as members, for the next size's steady state: they
		// accept the invitation (one left pending would count as repaired at the next size
		// before anything happened)
		for i := range k {
			if emu.AcceptInvite(hubUser(i), fmt.Sprintf("hubuser%06d", i)) != nil {
				emu.AddMember(fmt.Sprintf("hubuser%06d", i), hubUser(i), "member")
			}
		}
		if _, ok := b.s.settleOf(ctx, cfg, b.o.settle, size, say); !ok {
			return fmt.Errorf("the Docker Hub organization did not settle again after the drift")
		}
	}
	return nil
}

func hubUser(i int) string { return fmt.Sprintf("hub%06d@example.com", i) }

// watchCalls polls the emulator's log for d and returns when the first and the last request
// of that window arrived.
func watchCalls(ctx context.Context, log func() []hubemu.RequestRecord, d time.Duration) (first, last time.Time) {
	n := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		if m := len(log()); m > n {
			if n == 0 {
				first = time.Now()
			}
			last, n = time.Now(), m
		}
		time.Sleep(100 * time.Millisecond)
	}
	return first, last
}
