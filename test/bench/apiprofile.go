package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/pprof/profile"
)

// apiProfiles profiles the API server's CPU for as long as a measure runs, whose length is
// not known ahead (net/http/pprof takes a profile's length up front): one-second profiles,
// back to back, merged when the measure ends. With -pprof, besideRow takes one over the
// reads it times, so that the rest's share beside them (the API server and etcd, on 2
// cores) can be read as functions: note 28's lookup p99 at 100,000 missed while the rest
// used 0.58 of the cores, and nothing said what it ran. The API server's profiler costs
// its own CPU a little, so -pprof's read rows are not the verdicts of record.
type apiProfiles struct {
	stop func()
	done chan struct{}
	// got is each profile as the API server sent it: parsed and merged in write, after the
	// measure, so that the bench's own CPU beside the reads is the requests' only
	got [][]byte
	err error
}

func (s *stack) startAPIProfiles(ctx context.Context) *apiProfiles {
	pctx, stop := context.WithCancel(ctx)
	p := &apiProfiles{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for pctx.Err() == nil {
			// each profile runs to its end (ctx, not pctx): the last second holds the
			// measure's end
			raw, err := s.apiCPUProfileData(ctx, time.Second)
			if err != nil {
				p.err = err
				return
			}
			p.got = append(p.got, raw)
		}
	}()
	return p
}

// write ends the profiles, waits for the one running, and writes them merged to path.
func (p *apiProfiles) write(path string) error {
	p.stop()
	<-p.done
	if p.err != nil {
		return p.err
	}
	if len(p.got) == 0 {
		return fmt.Errorf("no profile of the API server")
	}
	all := make([]*profile.Profile, len(p.got))
	for i, raw := range p.got {
		pr, err := profile.ParseData(raw)
		if err != nil {
			return fmt.Errorf("the API server's CPU profile: %w", err)
		}
		all[i] = pr
	}
	merged, err := profile.Merge(all)
	if err != nil {
		return fmt.Errorf("merging %d profiles of the API server: %w", len(all), err)
	}
	var buf bytes.Buffer
	if err := merged.Write(&buf); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}
