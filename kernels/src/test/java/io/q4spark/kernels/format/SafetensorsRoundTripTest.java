package io.q4spark.kernels.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.BFloat16;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsRoundTripTest {
  @TempDir Path dir;

  /** Values every float type holds exactly, including the edges that break sloppy conversions. */
  private static final float[] EXACT_FLOATS = {
    0f,
    -0f,
    1f,
    -2.5f,
    65504f,
    0x1p-24f,
    Float.POSITIVE_INFINITY,
    Float.NEGATIVE_INFINITY,
    Float.NaN
  };

  @Test
  void everyDTypeRoundTrips() throws IOException {
    byte[] bools = {0, 1, 1, 0};
    byte[] i8 = {Byte.MIN_VALUE, -1, 0, 1, Byte.MAX_VALUE, 42};
    int[] i32 = {Integer.MIN_VALUE, -1, 0, 1, Integer.MAX_VALUE, 7};
    long[] i64 = {Long.MIN_VALUE, -1, 0, 1, Long.MAX_VALUE, 1L << 40};
    double[] f64 = {Math.PI, -0.0, Double.MIN_VALUE, Double.MAX_VALUE, Double.NaN, -1e300};
    // F16 cannot hold 65504's neighbours or subnormal BF16 values; these are exact in both.
    float[] f16 = {0f, -0f, 1f, -2.5f, 65504f, 0x1p-24f, Float.POSITIVE_INFINITY};
    float[] bf16 = {0f, -0f, 1f, -2.5f, 0x1p-100f, 0x1.fep127f, Float.NEGATIVE_INFINITY};
    byte[] u16 = {1, 2, 3, 4, 5, 6};
    byte[] u32 = {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF};
    byte[] u64 = new byte[8];
    u64[7] = (byte) 0x80;
    byte[] f8a = {0x3C, (byte) 0xBC};
    byte[] f8b = {0x38, (byte) 0xB8};
    Path file = dir.resolve("all.safetensors");
    new SafetensorsWriter()
        .add("bool", SafetensorsDType.BOOL, new long[] {2, 2}, bools)
        .add("u8", SafetensorsDType.U8, new long[] {3}, new byte[] {(byte) 255, 0, 7})
        .addBytes("i8", new long[] {2, 3}, i8)
        .add("f8_e5m2", SafetensorsDType.F8_E5M2, new long[] {2}, f8a)
        .add("f8_e4m3", SafetensorsDType.F8_E4M3, new long[] {2}, f8b)
        .add("i16", SafetensorsDType.I16, new long[] {3}, u16)
        .add("u16", SafetensorsDType.U16, new long[] {1, 3}, u16)
        .addFloats("f16", SafetensorsDType.F16, new long[] {7}, f16)
        .addFloats("bf16", SafetensorsDType.BF16, new long[] {7, 1}, bf16)
        .addInts("i32", new long[] {3, 2}, i32)
        .add("u32", SafetensorsDType.U32, new long[] {}, u32)
        .addFloats("f32", SafetensorsDType.F32, new long[] {EXACT_FLOATS.length}, EXACT_FLOATS)
        .addDoubles("f64", new long[] {2, 3}, f64)
        .addLongs("i64", new long[] {6}, i64)
        .add("u64", SafetensorsDType.U64, new long[] {1}, u64)
        .write(file);

    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(SafetensorsDType.values().length, f.names().size());
      assertEquals(
          List.of(
              "bf16", "bool", "f16", "f32", "f64", "f8_e4m3", "f8_e5m2", "i16", "i32", "i64", "i8",
              "u16", "u32", "u64", "u8"),
          List.copyOf(f.names()),
          "names() is sorted");
      for (SafetensorsDType type : SafetensorsDType.values()) {
        assertEquals(type, f.tensor(type.name().toLowerCase(java.util.Locale.ROOT)).dtype());
      }
      assertArrayEquals(bools, f.tensor("bool").toByteArray());
      assertArrayEquals(new byte[] {(byte) 255, 0, 7}, f.tensor("u8").toByteArray());
      assertArrayEquals(i8, f.tensor("i8").toByteArray());
      assertArrayEquals(new long[] {2, 3}, f.tensor("i8").shape());
      assertArrayEquals(f8a, f.tensor("f8_e5m2").data().toArray(ValueLayout.JAVA_BYTE));
      assertArrayEquals(f8b, f.tensor("f8_e4m3").data().toArray(ValueLayout.JAVA_BYTE));
      assertArrayEquals(u16, f.tensor("i16").data().toArray(ValueLayout.JAVA_BYTE));
      assertArrayEquals(u16, f.tensor("u16").data().toArray(ValueLayout.JAVA_BYTE));
      assertArrayEquals(f16, f.tensor("f16").toFloatArray());
      assertArrayEquals(bf16, f.tensor("bf16").toFloatArray());
      assertArrayEquals(i32, f.tensor("i32").toIntArray());
      assertArrayEquals(new int[] {-1}, f.tensor("u32").toIntArray());
      assertArrayEquals(EXACT_FLOATS, f.tensor("f32").toFloatArray());
      assertArrayEquals(f64, f.tensor("f64").toDoubleArray());
      assertArrayEquals(i64, f.tensor("i64").toLongArray());
      assertArrayEquals(new long[] {Long.MIN_VALUE}, f.tensor("u64").toLongArray());
    }
  }

  @Test
  void narrowFloatsAreWrittenWithTheBitsOfTheirConversions() {
    Path file = dir.resolve("bits.safetensors");
    float value = 1.0f / 3.0f;
    new SafetensorsWriter()
        .addFloats("h", SafetensorsDType.F16, new long[] {1}, new float[] {value})
        .addFloats("b", SafetensorsDType.BF16, new long[] {1}, new float[] {value})
        .write(file);
    ValueLayout.OfShort le = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(Float.floatToFloat16(value), f.tensor("h").data().get(le, 0));
      assertEquals(BFloat16.fromFloat(value), f.tensor("b").data().get(le, 0));
      assertEquals(
          Float.float16ToFloat(Float.floatToFloat16(value)), f.tensor("h").toFloatArray()[0]);
      assertEquals(BFloat16.round(value), f.tensor("b").toFloatArray()[0]);
      assertArrayEquals(new double[] {BFloat16.round(value)}, f.tensor("b").toDoubleArray());
    }
  }

  @Test
  void scalarsAndZeroSizeTensors() {
    Path file = dir.resolve("shapes.safetensors");
    new SafetensorsWriter()
        .addFloats("empty", SafetensorsDType.F32, new long[] {0, 4}, new float[0])
        .addInts("scalar", new long[] {}, new int[] {-17})
        .addLongs("empty_too", new long[] {4, 0, 2}, new long[0])
        .write(file);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      TensorView scalar = f.tensor("scalar");
      assertEquals(0, scalar.rank());
      assertEquals(1, scalar.numel());
      assertArrayEquals(new long[0], scalar.shape());
      assertArrayEquals(new int[] {-17}, scalar.toIntArray());
      TensorView empty = f.tensor("empty");
      assertEquals(2, empty.rank());
      assertEquals(0, empty.dim(0));
      assertEquals(4, empty.dim(1));
      assertEquals(0, empty.numel());
      assertEquals(0, empty.data().byteSize());
      assertArrayEquals(new float[0], empty.toFloatArray());
      assertArrayEquals(new long[0], f.tensor("empty_too").toLongArray());
    }
  }

  @Test
  void metadataRoundTripsInOrder() {
    Path file = dir.resolve("meta.safetensors");
    new SafetensorsWriter()
        .metadata("format", "pt")
        .metadata("quant", "w4a16 \"g128\" ü")
        .metadata("", "")
        .addInts("x", new long[] {1}, new int[] {1})
        .write(file);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(List.of("format", "quant", ""), List.copyOf(f.metadata().keySet()));
      assertEquals(Map.of("format", "pt", "quant", "w4a16 \"g128\" ü", "", ""), f.metadata());
      assertFalse(f.contains("__metadata__"));
    }
  }

  @Test
  void noMetadataAndNoTensors() {
    Path file = dir.resolve("empty.safetensors");
    new SafetensorsWriter().write(file);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertTrue(f.names().isEmpty());
      assertTrue(f.metadata().isEmpty());
    }
  }

  @Test
  void headerIsPaddedWithSpacesToEightBytesAndTensorsFollowInInsertionOrder() throws IOException {
    Path file = dir.resolve("pad.safetensors");
    new SafetensorsWriter()
        .metadata("k", "v")
        .addBytes("z", new long[] {1}, new byte[] {9})
        .addBytes("a", new long[] {2}, new byte[] {7, 8})
        .write(file);
    byte[] bytes = Files.readAllBytes(file);
    long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    assertEquals(0, headerLength % 8, "header length " + headerLength);
    String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
    assertEquals(
        "{\"__metadata__\":{\"k\":\"v\"},"
            + "\"z\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]},"
            + "\"a\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[1,3]}}",
        header.stripTrailing());
    assertTrue(header.length() - header.stripTrailing().length() < 8, header);
    assertEquals(8 + headerLength + 3, bytes.length);
    assertArrayEquals(
        new byte[] {9, 7, 8},
        java.util.Arrays.copyOfRange(bytes, (int) (8 + headerLength), bytes.length));
  }

  @Test
  void writeReplacesAnExistingFileAndLeavesNoTemporaryFile() throws IOException {
    Path file = dir.resolve("model.safetensors");
    Files.writeString(file, "old contents");
    new SafetensorsWriter().addBytes("x", new long[] {1}, new byte[] {5}).write(file);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertArrayEquals(new byte[] {5}, f.tensor("x").toByteArray());
    }
    try (var listing = Files.list(dir)) {
      assertEquals(List.of(file), listing.toList());
    }
  }

  @Test
  void writerRejectsBadInputs() {
    SafetensorsWriter w = new SafetensorsWriter().addInts("x", new long[] {2}, new int[] {1, 2});
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class, () -> w.addInts("x", new long[] {1}, new int[] {1}));
    assertEquals("tensor 'x' added twice", e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> w.add("y", SafetensorsDType.F32, new long[] {3}, new byte[10]));
    assertEquals(
        "tensor 'y': dtype F32 and shape [3] need 12 bytes, but 10 were given", e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class, () -> w.addInts("y", new long[] {2, 3}, new int[5]));
    assertEquals(
        "tensor 'y': shape [2, 3] holds 6 elements, but 5 values were given", e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class, () -> w.addInts("y", new long[] {-1}, new int[0]));
    assertEquals("tensor 'y': shape [-1] has a negative dimension", e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> w.addFloats("y", SafetensorsDType.F64, new long[] {1}, new float[1]));
    assertEquals(
        "tensor 'y': addFloats writes dtype F16, BF16 or F32, but was asked for F64",
        e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> w.addBytes("__metadata__", new long[] {1}, new byte[1]));
    assertEquals("tensor name '__metadata__' is reserved for the metadata entry", e.getMessage());
    w.metadata("k", "v");
    e = assertThrows(IllegalArgumentException.class, () -> w.metadata("k", "w"));
    assertEquals("metadata key 'k' added twice: first 'v', then 'w'", e.getMessage());
  }
}
