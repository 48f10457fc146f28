package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// rotate asks the operator for a new generated token. A token from spec.tokenSecretRef
// is made outside the operator, which only reads it: the rotate annotation would be
// accepted and nothing would happen, so rotate refuses and says where to rotate it.
func rotate(cmd *cobra.Command, e *env, name string) error {
	c, ns, err := e.client()
	if err != nil {
		return err
	}
	var cfg scimv1.ScimConfig
	if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: name}, &cfg); err != nil {
		return err
	}
	if ref := cfg.Spec.TokenSecretRef; ref != nil {
		return fmt.Errorf("cannot rotate the token of ScimConfig %s: it is an external token, read from Secret %s key %q "+
			"(spec.tokenSecretRef), and the operator only rotates the tokens it generates; put a new token in that Secret, "+
			"then give it to the IdP", name, ref.Name, ref.Key)
	}
	return annotate(cmd.Context(), e, &scimv1.ScimConfig{}, name, scimv1.AnnotationRotateToken, cmd)
}
