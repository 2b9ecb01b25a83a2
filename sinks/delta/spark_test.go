package delta_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/internal/testenv"
)

// readSpark reads each table given with Spark and the Delta Lake jars
// (delta-spark from Maven Central), printing "table <i>", its rows as
// readDeltaRS does (timestamps as UTC), then "version <latest>" from the
// table's history.
const readSpark = `
import sys, datetime
from pyspark.sql import SparkSession
cols, ivy, paths = sys.argv[1].split(","), sys.argv[2], sys.argv[3:]
spark = (SparkSession.builder.master("local[1]").appName("sluice-delta-interop")
    .config("spark.jars.packages", "io.delta:delta-spark_4.1_2.13:4.1.0")
    .config("spark.jars.ivy", ivy)
    .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
    .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.enabled", "false")
    .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
def s(v):
    if isinstance(v, datetime.datetime):
        v = v.replace(tzinfo=datetime.timezone.utc)
    return str(v)
for i, path in enumerate(paths):
    print("table", i)
    for r in sorted("|".join(s(r[c]) for c in cols) for r in spark.read.format("delta").load(path).collect()):
        print(r)
    print("version", spark.sql("DESCRIBE HISTORY delta.` + "`%s`" + `" % path).agg({"version": "max"}).collect()[0][0])
spark.stop()
`

// sparkPython is the python of scripts/spark-delta. Spark (a ~450 MB
// wheel, jars from Maven Central) is only fetched when SLUICE_SPARK=1 or
// CI=true; otherwise the test is skipped.
func sparkPython(t *testing.T) string {
	t.Helper()
	if os.Getenv("SLUICE_SPARK") != "1" && os.Getenv("CI") != "true" {
		t.Skip("set SLUICE_SPARK=1 to run the Spark interop test (installs pyspark 4.1.0 through scripts/spark-delta)")
	}
	cmd := exec.Command(filepath.Join(testenv.Root(), "scripts", "spark-delta"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		testenv.Missing(t, "pyspark via scripts/spark-delta: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestSparkReadsWhatSluiceWrote(t *testing.T) {
	py := sparkPython(t)
	whole, fromCheckpoint := t.TempDir(), t.TempDir()
	want := writeRich(t, whole)
	writeRich(t, fromCheckpoint)
	dropCommitsBeforeCheckpoint(t, fromCheckpoint)
	cmd := exec.Command(py, "-c", readSpark, "id,name,x,day,ts,ok,amount,tms", filepath.Join(testenv.Root(), ".cache", "ivy"), whole, fromCheckpoint)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spark: %v\n%s", err, stderr.String())
	}
	var exp []string
	for i := range 2 {
		exp = append(exp, fmt.Sprint("table ", i))
		exp = append(exp, want...)
		exp = append(exp, fmt.Sprint("version ", richBatches-1))
	}
	if got := strings.TrimSpace(string(out)); got != strings.Join(exp, "\n") {
		t.Fatalf("spark read:\n%s\nwant:\n%s", got, strings.Join(exp, "\n"))
	}
}
