// query.mjs runs one SQL statement with DuckDB and prints the result rows as a
// JSON array of objects, one per row, keyed by column name. Tests use it to read
// kediff's shards with an independent Parquet reader:
//
//	node tools/duckdb/query.mjs "SELECT key, image.path FROM 'out/00000.parquet'"
//
// Values become JSON as follows: integers that fit a double stay numbers, larger
// ones become decimal strings; BLOBs become lower-case hex strings; structs become
// objects, lists and arrays become arrays, maps become arrays of {key, value};
// everything else (dates, decimals, ...) becomes DuckDB's own text for it.
// With --types each result is {"columns": [{"name", "type"}], "rows": [...]}.
// Given several statements (one per argument), it prints one JSON array with
// each statement's result, so that tests start DuckDB once.
//
// Install the module once with `npm ci --prefix tools/duckdb`.
import {
  DuckDBInstance,
  DuckDBBlobValue,
  DuckDBStructValue,
  DuckDBListValue,
  DuckDBArrayValue,
  DuckDBMapValue,
} from "@duckdb/node-api";

function toJSON(v) {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case "bigint":
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(v)
        : v.toString();
    case "number":
    case "string":
    case "boolean":
      return v;
  }
  if (v instanceof DuckDBBlobValue) return Buffer.from(v.bytes).toString("hex");
  if (v instanceof DuckDBStructValue) {
    const o = {};
    for (const [k, x] of Object.entries(v.entries)) o[k] = toJSON(x);
    return o;
  }
  if (v instanceof DuckDBListValue || v instanceof DuckDBArrayValue) return v.items.map(toJSON);
  if (v instanceof DuckDBMapValue) return v.entries.map((e) => ({ key: toJSON(e.key), value: toJSON(e.value) }));
  return v.toString();
}

async function main() {
  const args = process.argv.slice(2);
  const withTypes = args[0] === "--types";
  if (withTypes) args.shift();
  if (args.length === 0) {
    process.stderr.write('usage: node query.mjs [--types] "SQL" ["SQL" ...]\n');
    process.exit(2);
  }
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  const results = [];
  for (const [n, sql] of args.entries()) {
    let reader;
    try {
      reader = await conn.runAndReadAll(sql);
    } catch (err) {
      throw new Error(args.length > 1 ? `statement ${n + 1}: ${err.message}` : err.message);
    }
    const names = reader.columnNames();
    const rows = reader.getRows().map((row) => {
      const o = {};
      row.forEach((v, i) => (o[names[i]] = toJSON(v)));
      return o;
    });
    if (withTypes) {
      const types = reader.columnTypes();
      results.push({ columns: names.map((c, i) => ({ name: c, type: types[i].toString() })), rows });
    } else {
      results.push(rows);
    }
  }
  const out = args.length === 1 ? results[0] : results;
  process.stdout.write(JSON.stringify(out) + "\n");
  conn.closeSync?.();
}

main().catch((err) => {
  process.stderr.write(`duckdb: ${err.message}\n`);
  process.exit(1);
});
