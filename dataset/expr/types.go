package expr

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
)

// TypeString is the canonical text of a data type (ParseType's input).
// TODO(expr helper): canonical forms and ParseType.
func TypeString(t arrow.DataType) string { return t.String() }

func (l *Literal) String() string {
	if l.Null {
		return "NULL"
	}
	if s, ok := l.Value.(string); ok {
		return fmt.Sprintf("'%s'", s)
	}
	return fmt.Sprint(l.Value)
}
