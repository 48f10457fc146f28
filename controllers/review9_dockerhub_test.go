package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// Adversarial review of issue 10 (helper review9): a deletion on Docker Hub orphans
// instead of removing when another live member has the same userName (SharedWith). The
// other member need not own the access: a member that came second, without adoption, is
// Preexisting, and SCIM never removes a Preexisting member's access. So the access SCIM
// granted for the first outlives both. In the SCIM race this is a create that lost its
// userName (its member reconciled, and invited, before dropLoser deleted it) and the
// winner, when the winner is new to the backend (a create under another object name, or
// an inactive user renamed to the name).
var _ = Describe("review9: two members of one userName on Docker Hub (issue 10)", func() {
	It("removes the invitation SCIM sent once every member of the userName is deleted", func() {
		ns := newNamespace()
		emu := hubConfig(ns, nil) // adoption off, deletion Remove
		loser := newMember(ns, "acme", "sam@example.com")
		Expect(k8s.Create(ctx, loser)).To(Succeed())
		settled(loser, "Invited/True/Invited")
		Expect(emu.Invites()).To(HaveLen(1))

		winner := newMember(ns, "acme", "sam@example.com")
		winner.Name = "sam-winner"
		Expect(k8s.Create(ctx, winner)).To(Succeed())
		Eventually(func() scimv1.MemberOrigin { return getMember(winner).Status.Origin }).Should(Equal(scimv1.OriginPreexisting),
			"the second member finds the invitation the first made, and adoption is off")

		Expect(k8s.Delete(ctx, loser)).To(Succeed()) // the losing create's dropLoser
		expectGone(loser)
		Expect(k8s.Delete(ctx, winner)).To(Succeed()) // the IdP deletes the user it knows
		expectGone(winner)
		Expect(emu.Invites()).To(BeEmpty(), "the invitation SCIM sent is left with no member, under deletion policy Remove")
	})
})

// SharedWith matches members by the SCIM userName key (naming.NameKey: case, width and
// invisible characters aside, "ß" is "ss"), but Docker Hub compares identities as they
// are, modulo case (naming.FoldUserName): "straße@…" and "strasse@…" are one SCIM user and
// two people to the backend. A create of "Straße@…" that lost to a rename to
// "strasse@…" (its member reconciled, and invited its own identity, before dropLoser
// deleted it) leaves its invitation behind: the winner wants another person.
var _ = Describe("review9: two members of one userName key but two backend identities (issue 10)", func() {
	It("removes the deleted member's own invitation when the other member's identity differs", func() {
		ns := newNamespace()
		emu := hubConfig(ns, nil)
		loser := newMember(ns, "acme", "straße@example.com")
		Expect(k8s.Create(ctx, loser)).To(Succeed())
		settled(loser, "Invited/True/Invited")

		winner := newMember(ns, "acme", "strasse@example.com")
		winner.Name = "strasse-winner"
		Expect(k8s.Create(ctx, winner)).To(Succeed())
		settled(winner, "Invited/True/Invited")
		Expect(emu.Invites()).To(HaveLen(2), "two people to Docker Hub")

		Expect(k8s.Delete(ctx, loser)).To(Succeed())
		expectGone(loser)
		var invitees []string
		for _, inv := range emu.Invites() {
			invitees = append(invitees, inv.Invitee)
		}
		Expect(invitees).To(ConsistOf("strasse@example.com"), "the deleted member's own invitation (straße) is left with no member")
	})
})
