package main

import (
	"flag"
	"testing"

	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// A --zap-log-level of 8 or more must not reach client-go's body logging (V(8)), which
// would write Secrets, the SCIM tokens among them, into the log.
func TestVerbosityIsCappedBelowBodyLogging(t *testing.T) {
	for _, level := range []string{"10", "8", "debug", "info"} {
		var o zap.Options
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse([]string{"--zap-log-level=" + level}); err != nil {
			t.Fatal(err)
		}
		l := cappedLevel{o.Level}
		if l.Enabled(zapcore.Level(-8)) || l.Enabled(zapcore.Level(-10)) {
			t.Errorf("--zap-log-level=%s enables V(8): request and response bodies would be logged", level)
		}
		if !l.Enabled(zapcore.InfoLevel) || !l.Enabled(zapcore.ErrorLevel) {
			t.Errorf("--zap-log-level=%s no longer logs info and errors", level)
		}
		if want := level == "10" || level == "8"; l.Enabled(zapcore.Level(-7)) != want {
			t.Errorf("--zap-log-level=%s: V(7) enabled = %v, want %v", level, !want, want)
		}
	}
}
