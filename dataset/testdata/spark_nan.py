"""Spark's answers for NaN, -0.0, +-Inf and null in comparisons, IN, BETWEEN,
CASE, joins, grouping and min/max, for float and double columns.

TestSparkNaN (dataset/nan_test.go) evaluates the same expressions through
sluice's Dataset API and compares with spark_nan.json, which is committed so
`make test` needs no Spark. Regenerate it (Spark 4.x on Java 17) with

    $(scripts/spark) dataset/testdata/spark_nan.py > dataset/testdata/spark_nan.json

The expression names (keys of EXPRS) are the ones the Go test knows; a new
expression needs both sides.
"""
import json
import math
import sys

from pyspark.sql import SparkSession
from pyspark.sql.types import DoubleType, FloatType, IntegerType, StructField, StructType

VALUES = ["NaN", "-Inf", "-1.0", "-0.0", "0.0", "1.0", "Inf", "null"]

# Columns a and b hold every pair of VALUES; each expression is evaluated on
# every pair.
EXPRS = {
    "eq": "a = b",
    "ne": "a <> b",
    "lt": "a < b",
    "le": "a <= b",
    "gt": "a > b",
    "ge": "a >= b",
    "not_gt": "NOT (a > b)",
    "eq_nan": "a = CAST('NaN' AS DOUBLE)",
    "ne_nan": "a <> CAST('NaN' AS DOUBLE)",
    "lt_nan": "a < CAST('NaN' AS DOUBLE)",
    "ge_nan": "a >= CAST('NaN' AS DOUBLE)",
    "nan_gt": "CAST('NaN' AS DOUBLE) > a",
    "gt_zero": "a > 0",
    "le_inf": "a <= CAST('Infinity' AS DOUBLE)",
    "eq_negzero": "a = -0.0D",
    "in_nan": "a IN (CAST('NaN' AS DOUBLE), 1.0D)",
    "in_zero": "a IN (0.0D)",
    "between_b_nan": "a BETWEEN b AND CAST('NaN' AS DOUBLE)",
    "between_lit": "a BETWEEN -1.0D AND 1.0D",
    "case": "CASE WHEN a = b THEN 'eq' WHEN a > b THEN 'gt' WHEN a < b THEN 'lt' ELSE 'none' END",
}


def parse(s):
    special = {"NaN": math.nan, "Inf": math.inf, "-Inf": -math.inf, "null": None}
    return special[s] if s in special else float(s)


def fmt(x):
    if x is None:
        return "null"
    if isinstance(x, float):
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "Inf" if x > 0 else "-Inf"
        if x == 0:
            return "-0.0" if math.copysign(1, x) < 0 else "0.0"
        return repr(x)
    return x


def main():
    spark = SparkSession.builder.master("local[1]").appName("spark_nan").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    out = {"spark": spark.version, "values": VALUES, "exprs": EXPRS, "types": {}}
    for tname, ttype in (("float", FloatType()), ("double", DoubleType())):
        pairs = [(i, parse(x), parse(y)) for i, (x, y) in enumerate((x, y) for x in VALUES for y in VALUES)]
        schema = StructType([StructField("id", IntegerType()), StructField("a", ttype), StructField("b", ttype)])
        df = spark.createDataFrame(pairs, schema)
        sel = ["id", "a", "b"] + [f"{e} AS {n}" for n, e in EXPRS.items()]
        rows = []
        for r in sorted(df.selectExpr(*sel).collect(), key=lambda r: r["id"]):
            row = {"a": fmt(r["a"]), "b": fmt(r["b"])}
            for n in EXPRS:
                row[n] = r[n]
            rows.append(row)

        one = StructType([StructField("id", IntegerType()), StructField("k", ttype)])
        left = spark.createDataFrame([(i, parse(v)) for i, v in enumerate(VALUES)], one)
        right = spark.createDataFrame([(i + 100, parse(v)) for i, v in enumerate(VALUES)], one)
        joined = left.join(right.withColumnRenamed("id", "rid"), "k").select("id", "rid").collect()
        join = sorted([VALUES[r["id"]], VALUES[r["rid"] - 100]] for r in joined)

        # Duplicate every value, with a second NaN and -0.0 next to 0.0, so
        # grouping has something to merge.
        many = spark.createDataFrame([(i, parse(v)) for i, v in enumerate(VALUES + VALUES)], one)
        groups = sorted([fmt(r["k"]), r["n"]] for r in many.groupBy("k").count().withColumnRenamed("count", "n").collect())
        agg = many.selectExpr("min(k) AS mn", "max(k) AS mx", "count(DISTINCT k) AS nd").collect()[0]
        ordered = [fmt(r["k"]) for r in many.orderBy("k").collect()]
        out["types"][tname] = {
            "rows": rows,
            "join": join,
            "groups": groups,
            "min": fmt(agg["mn"]),
            "max": fmt(agg["mx"]),
            "count_distinct": agg["nd"],
            "order": ordered,
        }
    spark.stop()
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
