package chain_test

import (
	"context"
	"testing"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/chain"
	memsrc "github.com/sluicedata/sluice/sources/memory"
)

func TestIdentityNamesBothParts(t *testing.T) {
	f := newFixture(t)
	c := f.chain(t, chain.OffsetsFile(), 0)
	want := "chain history=(history dir=" + f.dir + ") live=(kafka topics=" + topic + ")"
	if got := c.Identity(); got != want {
		t.Fatalf("Identity() = %q; want %q", got, want)
	}

	hist, err := memsrc.New(memsrc.Config{Name: "h", Schema: outSchema})
	if err != nil {
		t.Fatal(err)
	}
	live := func(context.Context, sources.Offset) (sources.Stream, error) { return nil, nil }
	for _, tt := range []struct {
		name string
		cfg  chain.Config
		want string
	}{
		{"a live stream without a declared identity", chain.Config{History: hist, Live: live}, "chain history=(memory name=h) live=(unnamed)"},
		{"a declared live identity", chain.Config{History: hist, Live: live, LiveIdentity: "kafka topics=x"}, "chain history=(memory name=h) live=(kafka topics=x)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := chain.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Identity(); got != tt.want {
				t.Fatalf("Identity() = %q; want %q", got, tt.want)
			}
		})
	}
	hist.Close()
}
