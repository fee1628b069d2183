package io.q4spark.jobs.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The {@code --json} report: the environment, the idle check, the DRAM bandwidth, the kernels left
 * out, the heap per shape, and every measurement with its ratios to the ONNX Runtime peers. A value
 * that is unknown (NaN) is written as null, so the file stays valid JSON.
 *
 * <pre>
 * {
 *   "command": "bench cpu", "args": [...], "java": "25...", "cpus": 2, "threads": 2, "quick": false,
 *   "idle_check": {"load_average": .., "calibration_ms": [.., ..], "warnings": [..]},
 *   "dram": {"loop": .., "threads": 2, "bytes": .., "best_gbps": .., "median_gbps": .., "passes_gbps": [..]},
 *   "skipped": [{"kernel": .., "act": .., "scheme": .., "reason": ..}],
 *   "heap": [{"shape": .., "resident_bytes": .., "peak_bytes": .., "beyond_resident_bytes": ..}],
 *   "measurements": [{"backend": "ort-matmulnbits-acc4", "kernel": null, "act": "float32",
 *     "scheme": "W4A8", "mode": "hot", "m": 1, "k": 4096, "n": 4096, "g": 128, "threads": 2,
 *     "copies": 1, "weight_bytes": .., "median_ms": .., "p10_ms": .., "p90_ms": .., "reps": ..,
 *     "calls_per_rep": .., "gbps": .., "alloc_bytes_per_call": .., "max_rel_err_vs_fp32": ..,
 *     "ratio_to_acc4": .., "ratio_to_acc0": ..}, ...]
 * }
 * </pre>
 */
final class JsonReport {
  private static final ObjectMapper MAPPER =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private final ObjectNode root = MAPPER.createObjectNode();
  private final ArrayNode skipped;
  private final ArrayNode heap;
  private final ArrayNode measurements;

  JsonReport(String[] args, CpuBenchOptions options) {
    root.put("command", "bench cpu");
    ArrayNode a = root.putArray("args");
    for (String s : args) {
      a.add(s);
    }
    root.put("java", System.getProperty("java.version"));
    root.put("os_arch", System.getProperty("os.arch"));
    root.put("cpus", Runtime.getRuntime().availableProcessors());
    root.put("threads", options.threads());
    root.put("quick", options.quick());
    skipped = root.putArray("skipped");
    heap = root.putArray("heap");
    measurements = root.putArray("measurements");
  }

  void idleCheck(IdleCheck.Result r) {
    ObjectNode o = root.putObject("idle_check");
    number(o, "load_average", r.loadAverage());
    o.putArray("calibration_ms").add(r.firstMillis()).add(r.secondMillis());
    ArrayNode w = o.putArray("warnings");
    r.warnings().forEach(w::add);
  }

  void dram(DramBandwidth.Result r) {
    ObjectNode o = root.putObject("dram");
    o.put("loop", r.loop());
    o.put("threads", r.threads());
    o.put("bytes", r.bytes());
    o.put("best_gbps", r.best());
    o.put("median_gbps", r.median());
    ArrayNode p = o.putArray("passes_gbps");
    for (double g : r.gbPerSecond()) {
      p.add(g);
    }
  }

  void skip(ShapeBackends.Skip s) {
    ObjectNode o = skipped.addObject();
    o.put("kernel", s.kernel());
    o.put("act", s.act().torchName());
    o.put("scheme", s.scheme() == null ? null : s.scheme().name());
    o.put("reason", s.reason());
  }

  void heap(String shape, HeapPeak h) {
    ObjectNode o = heap.addObject();
    o.put("shape", shape);
    o.put("resident_bytes", h.resident());
    o.put("peak_bytes", h.peak());
    o.put("beyond_resident_bytes", h.beyondResident());
  }

  void row(List<Measurement> row) {
    Measurement acc4 = ResultTable.find(row, Backend.ORT_ACC4);
    Measurement acc0 = ResultTable.find(row, Backend.ORT_ACC0);
    for (Measurement m : row) {
      ObjectNode o = measurements.addObject();
      o.put("backend", m.backend());
      o.put("kernel", m.kernel());
      o.put("act", m.act());
      o.put("scheme", m.scheme());
      o.put("shape", m.shape());
      o.put("mode", m.mode().label());
      o.put("m", m.m());
      o.put("k", m.k());
      o.put("n", m.n());
      o.put("g", m.g());
      o.put("threads", m.threads());
      o.put("copies", m.copies());
      o.put("weight_bytes", m.weightBytes());
      number(o, "median_ms", m.medianMs());
      number(o, "p10_ms", m.p10Ms());
      number(o, "p90_ms", m.p90Ms());
      o.put("reps", m.reps());
      o.put("calls_per_rep", m.callsPerRep());
      number(o, "gbps", m.gbPerSecond());
      number(o, "alloc_bytes_per_call", m.allocatedBytesPerCall());
      number(o, "max_rel_err_vs_fp32", m.maxRelativeError());
      number(o, "ratio_to_acc4", ResultTable.ratio(m, acc4));
      number(o, "ratio_to_acc0", ResultTable.ratio(m, acc0));
    }
  }

  void write(Path file) {
    try {
      Path parent = file.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      MAPPER.writeValue(file.toFile(), root);
    } catch (IOException e) {
      throw new UncheckedIOException("writing the JSON report " + file + ": " + e.getMessage(), e);
    }
  }

  private static void number(ObjectNode o, String key, double v) {
    if (Double.isFinite(v)) {
      o.put(key, v);
    } else {
      o.putNull(key);
    }
  }
}
