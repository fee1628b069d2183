package io.q4spark.kernels.format;

import static io.q4spark.kernels.format.SafetensorsTestFiles.raw;
import static io.q4spark.kernels.format.SafetensorsTestFiles.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TensorViewTest {
  @TempDir Path dir;

  private SafetensorsFile openSample() {
    Path file = dir.resolve("v.safetensors");
    new SafetensorsWriter()
        .addFloats("h", SafetensorsDType.F16, new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6})
        .addInts("i", new long[] {2}, new int[] {1, 2})
        .write(file);
    return SafetensorsFile.open(file);
  }

  @Test
  void wrongDTypeNamesTheTensorTheFileAndTheAcceptedTypes() {
    try (SafetensorsFile f = openSample()) {
      TensorView h = f.tensor("h");
      String where = "tensor 'h' in " + f.path();
      assertEquals(
          where + " has dtype F16, expected one of [I32, U32]",
          assertThrows(SafetensorsException.class, h::toIntArray).getMessage());
      assertEquals(
          where + " has dtype F16, expected one of [I8, U8, BOOL]",
          assertThrows(SafetensorsException.class, h::toByteArray).getMessage());
      assertEquals(
          where + " has dtype F16, expected one of [I64, U64]",
          assertThrows(SafetensorsException.class, h::toLongArray).getMessage());
      assertEquals(
          "tensor 'i' in " + f.path() + " has dtype I32, expected one of [F16, BF16, F32]",
          assertThrows(SafetensorsException.class, f.tensor("i")::toFloatArray).getMessage());
      assertEquals(
          "tensor 'i' in " + f.path() + " has dtype I32, expected one of [F64, F32, F16, BF16]",
          assertThrows(SafetensorsException.class, f.tensor("i")::toDoubleArray).getMessage());
    }
  }

  @Test
  void requireShape() {
    try (SafetensorsFile f = openSample()) {
      TensorView h = f.tensor("h");
      h.requireShape(2, 3);
      assertEquals(
          "tensor 'h' in " + f.path() + " has shape [2, 3], expected [3, 2]",
          assertThrows(SafetensorsException.class, () -> h.requireShape(3, 2)).getMessage());
      assertEquals(
          "tensor 'h' in " + f.path() + " has shape [2, 3], expected []",
          assertThrows(SafetensorsException.class, h::requireShape).getMessage());
    }
  }

  @Test
  void shapeIsACopyAndDimIsChecked() {
    try (SafetensorsFile f = openSample()) {
      TensorView h = f.tensor("h");
      h.shape()[0] = 99;
      assertEquals(2, h.dim(0));
      assertEquals(6, h.numel());
      IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> h.dim(2));
      assertEquals(
          "tensor 'h' in " + f.path() + " has rank 2, so dimension 2 does not exist",
          e.getMessage());
    }
  }

  @Test
  void dataIsAReadOnlyZeroCopySliceOfTheFile() {
    try (SafetensorsFile f = openSample()) {
      TensorView i = f.tensor("i");
      assertTrue(i.data().isReadOnly());
      assertTrue(i.data().isMapped());
      assertEquals(8, i.data().byteSize());
      assertEquals(
          2, i.data().get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 4));
    }
  }

  @Test
  void unalignedTensorsAreReadCorrectly() {
    // 'b' is one byte, so 'w' starts at an odd address in the mapping.
    Path file =
        write(
            dir.resolve("odd.safetensors"),
            raw(
                "{'b':{'dtype':'U8','shape':[1],'data_offsets':[0,1]},"
                    + "'w':{'dtype':'I32','shape':[2],'data_offsets':[1,9]}} ",
                9));
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      // raw() fills the data with 0, 1, 2, ...: w = LE ints of bytes 1..4 and 5..8.
      int[] w = f.tensor("w").toIntArray();
      assertEquals(0x04030201, w[0]);
      assertEquals(0x08070605, w[1]);
    }
  }

  @Test
  void tensorsTooLargeForAJavaArrayAreRefused() throws IOException {
    long elements = 1L << 31;
    Path file = dir.resolve("big.safetensors");
    byte[] header =
        ("{\"big\":{\"dtype\":\"U8\",\"shape\":["
                + elements
                + "],\"data_offsets\":[0,"
                + elements
                + "]}}")
            .getBytes(java.nio.charset.StandardCharsets.UTF_8);
    write(file, raw(header.length, header, 0));
    // Sparse: the 2 GiB of data are a hole in the file, never touched by the test.
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(8 + header.length + elements);
    }
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      TensorView big = f.tensor("big");
      assertEquals(elements, big.data().byteSize());
      assertEquals(
          "tensor 'big' in "
              + file
              + " has 2147483648 elements (shape [2147483648]), more than a Java array holds"
              + " (2147483639); read it through data() instead",
          assertThrows(SafetensorsException.class, big::toByteArray).getMessage());
    }
  }

  @Test
  void dtypeParse() {
    assertEquals(SafetensorsDType.BF16, SafetensorsDType.parse("BF16", "test"));
    assertEquals(
        "unknown dtype 'bf16' for test; expected one of [BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16,"
            + " F16, BF16, I32, U32, F32, F64, I64, U64]",
        assertThrows(SafetensorsException.class, () -> SafetensorsDType.parse("bf16", "test"))
            .getMessage());
    assertEquals(2, SafetensorsDType.BF16.byteSize());
    assertEquals(1, SafetensorsDType.F8_E4M3.byteSize());
    assertEquals(8, SafetensorsDType.U64.byteSize());
  }
}
