package dockerhub

import (
	"fmt"
	"testing"

	"github.com/scim-operator/scim-operator/internal/backend"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// benchEnv is an emulator without the contract validator (it would dominate the numbers).
func benchEnv(b *testing.B, members int) *env {
	e := setup(b, func(eo *hubemu.Options, _ *Options) { eo.Middleware = nil })
	for i := range members {
		e.emu.AddMember(fmt.Sprintf("user%04d", i), fmt.Sprintf("user%04d@corp.example", i), "member")
	}
	return e
}

// BenchmarkListMembers2000 lists 2,000 members (21 pages of 100) and the invites.
func BenchmarkListMembers2000(b *testing.B) {
	e := benchEnv(b, 2000)
	c := ctx(b)
	b.ResetTimer()
	for b.Loop() {
		list, err := e.b.ListMembers(c)
		if err != nil || len(list) != 2001 {
			b.Fatalf("%d %v", len(list), err)
		}
	}
}

// BenchmarkEnsureExistingMember is the steady state of a resync: the person is a
// member with the wanted role, so one search and one invites call, no write.
func BenchmarkEnsureExistingMember(b *testing.B) {
	e := benchEnv(b, 2000)
	c := ctx(b)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		who := fmt.Sprintf("user%04d@corp.example", i%2000)
		i++
		m, err := e.b.EnsureMember(c, backend.DesiredMember{UserName: who})
		if err != nil || m.State != backend.StateMember {
			b.Fatalf("%+v %v", m, err)
		}
	}
}
