package io.q4spark.kernels.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Mutates a valid file many times and opens each result: every failure must be a {@link
 * SafetensorsException}, and nothing may hang. Rerun a failure with {@code -Dq4spark.fuzz.seed=S}.
 */
class SafetensorsFuzzTest {
  /** Fixed so a run is reproducible; override with -Dq4spark.fuzz.seed to explore further. */
  private static final long DEFAULT_SEED = 0x5AFE_7E45_0000_0001L;

  private static final int ITERATIONS = Integer.getInteger("q4spark.fuzz.iterations", 10_000);

  /** Generous: the loop takes a few seconds; a hang or a quadratic blow-up takes far longer. */
  private static final Duration TIME_LIMIT = Duration.ofSeconds(60);

  /** Bytes that change JSON structure; flipping to one of these reaches deeper parser paths. */
  private static final byte[] JSON_BYTES =
      "{}[]\",:0123456789-.eE ntfu\\\u0000".getBytes(StandardCharsets.US_ASCII);

  private static final List<String> KEYS =
      List.of("__metadata__", "dtype", "shape", "data_offsets", "w", "b", "", "x\u00e9");

  private static final List<String> DTYPES =
      List.of("F32", "F16", "BF16", "I32", "U8", "I64", "F64", "BOOL", "F8_E4M3", "I16", "Q4");

  private static final String[] NUMBERS = {
    "0",
    "1",
    "2",
    "3",
    "4",
    "8",
    "12",
    "-1",
    "1.5",
    "1e3",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "-0",
    "4294967296"
  };

  private enum Mutation {
    LENGTH_BYTES,
    HEADER_BYTES,
    TRUNCATE,
    LENGTH_VALUE,
    INSERT,
    DELETE,
    RANDOM_HEADER,
    DATA_BYTES
  }

  @TempDir Path dir;

  @Test
  void mutatedFilesFailOnlyWithSafetensorsException() throws IOException {
    long seed = Long.getLong("q4spark.fuzz.seed", DEFAULT_SEED);
    System.out.println("SafetensorsFuzzTest seed=" + seed + " iterations=" + ITERATIONS);
    Path validPath = dir.resolve("valid.safetensors");
    new SafetensorsWriter()
        .metadata("format", "pt")
        .metadata("quant_method", "gptq")
        .addFloats("w.f16", SafetensorsDType.F16, new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6})
        .addFloats("w.bf16", SafetensorsDType.BF16, new long[] {3}, new float[] {-1, 0, 1})
        .addInts("qweight", new long[] {2, 2}, new int[] {1, -2, 3, -4})
        .addBytes("zeros", new long[] {5}, new byte[] {0, 1, 2, 3, 4})
        .addLongs("g_idx", new long[] {}, new long[] {7})
        .addDoubles("scale", new long[] {0, 4}, new double[0])
        .add("flags", SafetensorsDType.BOOL, new long[] {2}, new byte[] {1, 0})
        .write(validPath);
    byte[] valid = Files.readAllBytes(validPath);
    long headerLength = ByteBuffer.wrap(valid).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    int dataStart = (int) (8 + headerLength);

    Path path = dir.resolve("fuzz.safetensors");
    int[] opened = new int[Mutation.values().length];
    int[] rejected = new int[Mutation.values().length];
    assertTimeoutPreemptively(
        TIME_LIMIT,
        () -> {
          Random random = new Random(seed);
          for (int i = 0; i < ITERATIONS; i++) {
            Mutation mutation = Mutation.values()[random.nextInt(Mutation.values().length)];
            byte[] bytes = mutate(mutation, valid, dataStart, random);
            Files.write(path, bytes);
            try (SafetensorsFile f = SafetensorsFile.open(path)) {
              readEverything(f);
              opened[mutation.ordinal()]++;
            } catch (SafetensorsException expected) {
              rejected[mutation.ordinal()]++;
            } catch (Throwable t) {
              fail(
                  "seed="
                      + seed
                      + " iteration="
                      + i
                      + " mutation="
                      + mutation
                      + ": expected SafetensorsException, got "
                      + t,
                  t);
            }
          }
        },
        "seed=" + seed + ": fuzz loop exceeded " + TIME_LIMIT);
    System.out.println(
        "SafetensorsFuzzTest opened="
            + Arrays.toString(opened)
            + " rejected="
            + Arrays.toString(rejected)
            + " by "
            + Arrays.toString(Mutation.values()));
    // Flipping data bytes keeps the file valid, so the reading path is exercised too.
    assertEquals(0, rejected[Mutation.DATA_BYTES.ordinal()], "seed=" + seed);
    assertTrue(Arrays.stream(rejected).sum() > ITERATIONS / 2, "seed=" + seed);
  }

  private static void readEverything(SafetensorsFile f) {
    f.metadata().forEach((k, v) -> assertTrue(k != null && v != null));
    for (String name : f.names()) {
      TensorView t = f.tensor(name);
      long elements =
          switch (t.dtype()) {
            case I32, U32 -> t.toIntArray().length;
            case I8, U8, BOOL -> t.toByteArray().length;
            case I64, U64 -> t.toLongArray().length;
            case F16, BF16, F32 -> {
              t.toDoubleArray();
              yield t.toFloatArray().length;
            }
            case F64 -> t.toDoubleArray().length;
            case F8_E5M2, F8_E4M3, I16, U16 ->
                t.data().toArray(ValueLayout.JAVA_BYTE).length / t.dtype().byteSize();
          };
      assertEquals(t.numel(), elements, name);
    }
  }

  private static byte[] mutate(Mutation mutation, byte[] valid, int dataStart, Random r) {
    byte[] b = valid.clone();
    switch (mutation) {
      case LENGTH_BYTES -> {
        for (int n = 1 + r.nextInt(3); n > 0; n--) {
          b[r.nextInt(8)] = (byte) r.nextInt(256);
        }
      }
      case HEADER_BYTES -> {
        for (int n = 1 + r.nextInt(4); n > 0; n--) {
          int at = 8 + r.nextInt(dataStart - 8);
          b[at] =
              r.nextBoolean()
                  ? JSON_BYTES[r.nextInt(JSON_BYTES.length)]
                  : (byte) (b[at] ^ (1 << r.nextInt(8)));
        }
      }
      case TRUNCATE -> b = Arrays.copyOf(b, r.nextInt(valid.length));
      case LENGTH_VALUE -> {
        long value =
            switch (r.nextInt(4)) {
              case 0 -> r.nextLong();
              case 1 -> r.nextInt(valid.length + 16);
              case 2 -> dataStart - 8 + r.nextInt(33) - 16;
              default -> Long.MIN_VALUE + r.nextInt(16);
            };
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, value);
      }
      case INSERT -> {
        int at = r.nextInt(b.length + 1);
        byte[] extra = new byte[1 + r.nextInt(16)];
        r.nextBytes(extra);
        byte[] out = new byte[b.length + extra.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(extra, 0, out, at, extra.length);
        System.arraycopy(b, at, out, at + extra.length, b.length - at);
        b = out;
      }
      case DELETE -> {
        int at = r.nextInt(b.length);
        int n = 1 + r.nextInt(Math.min(16, b.length - at));
        byte[] out = new byte[b.length - n];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(b, at + n, out, at, b.length - at - n);
        b = out;
      }
      case RANDOM_HEADER -> {
        StringBuilder json = new StringBuilder();
        int style = r.nextInt(4);
        if (style == 0) {
          randomTokens(json, r);
        } else if (style == 1) {
          tiledHeader(json, r, valid.length - dataStart);
        } else {
          randomValue(json, r, 0, valid.length - dataStart);
        }
        byte[] header = json.toString().getBytes(StandardCharsets.UTF_8);
        int dataBytes = valid.length - dataStart;
        ByteBuffer out =
            ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(header.length).put(header).put(valid, dataStart, dataBytes);
        b = out.array();
      }
      case DATA_BYTES -> {
        for (int n = 1 + r.nextInt(8); n > 0 && dataStart < b.length; n--) {
          b[dataStart + r.nextInt(b.length - dataStart)] = (byte) r.nextInt(256);
        }
      }
    }
    return b;
  }

  /** Token soup: mostly malformed JSON built from the pieces a header is made of. */
  private static void randomTokens(StringBuilder out, Random r) {
    for (int n = r.nextInt(40); n > 0; n--) {
      switch (r.nextInt(6)) {
        case 0 -> out.append((char) JSON_BYTES[r.nextInt(JSON_BYTES.length)]);
        case 1 -> out.append('"').append(KEYS.get(r.nextInt(KEYS.size()))).append('"');
        case 2 -> out.append('"').append(DTYPES.get(r.nextInt(DTYPES.size()))).append('"');
        case 3 -> out.append(NUMBERS[r.nextInt(NUMBERS.length)]);
        case 4 -> out.append("[".repeat(r.nextInt(3) == 0 ? 2000 : 1));
        default -> out.append((char) (r.nextInt(0x2FF) + 1));
      }
    }
  }

  /**
   * A well-formed JSON value that often looks like a header: objects of tensor entries with
   * plausible dtypes, shapes and offsets inside the data buffer, so some of them validate.
   */
  private static void randomValue(StringBuilder out, Random r, int depth, int dataBytes) {
    int choice = depth == 0 ? 0 : r.nextInt(depth > 4 ? 3 : 6);
    switch (choice) {
      case 0 -> {
        out.append('{');
        for (int n = r.nextInt(4); n > 0; n--) {
          out.append('"').append(KEYS.get(r.nextInt(KEYS.size()))).append(n).append("\":");
          if (depth == 0 && r.nextBoolean()) {
            tensorEntry(out, r, dataBytes);
          } else {
            randomValue(out, r, depth + 1, dataBytes);
          }
          if (n > 1) {
            out.append(',');
          }
        }
        out.append('}');
      }
      case 1 -> out.append(NUMBERS[r.nextInt(NUMBERS.length)]);
      case 2 -> out.append('"').append(DTYPES.get(r.nextInt(DTYPES.size()))).append('"');
      case 3 -> {
        out.append('[');
        for (int n = r.nextInt(4); n > 0; n--) {
          randomValue(out, r, depth + 1, dataBytes);
          if (n > 1) {
            out.append(',');
          }
        }
        out.append(']');
      }
      case 4 -> out.append(r.nextBoolean() ? "null" : "true");
      default -> out.append("{\"__metadata__\":{\"k\":\"v\"}}");
    }
  }

  /**
   * A header whose tensors tile the data buffer exactly, with random dtypes, shapes and (mostly
   * unaligned) offsets; one time in three a single number is then nudged by one, which must be
   * caught.
   */
  private static void tiledHeader(StringBuilder out, Random r, int dataBytes) {
    SafetensorsDType[] types = SafetensorsDType.values();
    StringBuilder json = new StringBuilder("{\"__metadata__\":{\"k\":\"v\"}");
    int offset = 0;
    for (int n = 0; offset < dataBytes || (n < 8 && r.nextInt(4) == 0); n++) {
      int remaining = dataBytes - offset;
      SafetensorsDType type = types[r.nextInt(types.length)];
      while (type.byteSize() > remaining && remaining > 0) {
        type = types[r.nextInt(types.length)];
      }
      int count = remaining == 0 ? 0 : 1 + r.nextInt(remaining / type.byteSize());
      String shape;
      if (count == 0) {
        shape = "[0," + r.nextInt(4) + "]";
      } else if (count == 1 && r.nextBoolean()) {
        shape = "[]";
      } else if (count % 2 == 0 && r.nextBoolean()) {
        shape = "[2," + count / 2 + "]";
      } else {
        shape = "[" + count + "]";
      }
      int end = offset + count * type.byteSize();
      json.append(",\"t")
          .append(n)
          .append("\":{\"dtype\":\"")
          .append(type)
          .append("\",\"shape\":")
          .append(shape)
          .append(",\"data_offsets\":[")
          .append(offset)
          .append(',')
          .append(end)
          .append("]}");
      offset = end;
    }
    json.append('}');
    if (r.nextInt(3) == 0) {
      // Nudge one digit: shapes and offsets then disagree, or tensors overlap or leave a hole.
      int at = r.nextInt(json.length());
      char c = json.charAt(at);
      if (c >= '1' && c <= '8') {
        json.setCharAt(at, (char) (c + (r.nextBoolean() ? 1 : -1)));
      }
    }
    out.append(json);
  }

  private static void tensorEntry(StringBuilder out, Random r, int dataBytes) {
    int begin = r.nextInt(dataBytes + 1);
    int end = begin + r.nextInt(dataBytes - begin + 1);
    out.append("{\"dtype\":\"")
        .append(DTYPES.get(r.nextInt(DTYPES.size())))
        .append("\",\"shape\":[")
        .append(end - begin)
        .append("],\"data_offsets\":[")
        .append(r.nextInt(8) == 0 ? 0 : begin)
        .append(',')
        .append(end)
        .append("]}");
  }
}
