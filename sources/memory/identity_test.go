package memory_test

import (
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/sources/memory"
)

func TestIdentityIsTheName(t *testing.T) {
	a := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := arrow.NewSchema([]arrow.Field{{Name: "b", Type: arrow.BinaryTypes.String}}, nil)
	for _, tt := range []struct {
		name string
		cfg  memory.Config
		want string
	}{
		{"the name", memory.Config{Name: "orders", Schema: a}, "memory name=orders"},
		{"another schema or cap is the same source", memory.Config{Name: "orders", Schema: b, MaxRowsPerBatch: 3}, "memory name=orders"},
		{"the default name", memory.Config{Schema: a}, "memory name=memory"},
		{"another name is another source", memory.Config{Name: "payments", Schema: a}, "memory name=payments"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := memory.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.Identity(); got != tt.want {
				t.Fatalf("Identity() = %q; want %q", got, tt.want)
			}
		})
	}
}
