package io.q4spark.kernels.format;

import static io.q4spark.kernels.format.SafetensorsTestFiles.raw;
import static io.q4spark.kernels.format.SafetensorsTestFiles.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Malformed files: each must fail at open with a SafetensorsException that names the problem. */
class SafetensorsFileTest {
  @TempDir Path dir;
  private Path file;

  @BeforeEach
  void setUp() {
    file = dir.resolve("t.safetensors");
  }

  private String openFails(byte[] bytes) {
    write(file, bytes);
    SafetensorsException e =
        assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(file).close());
    return e.getMessage();
  }

  /**
   * Asserts the message is exactly {@code FILE: expected} (FILE stands for the test file's path).
   */
  private void assertFails(String expected, byte[] bytes) {
    assertEquals(expected.replace("FILE", file.toString()), openFails(bytes));
  }

  private static final String W = "'w':{'dtype':'F32','shape':[3],'data_offsets':[0,12]}";

  @Test
  void handWrittenValidFileOpens() {
    write(file, raw("{" + W + "}  ", 12));
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertArrayEquals(new long[] {3}, f.tensor("w").shape());
      assertEquals(file, f.path());
      assertEquals(file.toString(), f.describe());
      assertEquals(file.toString(), f.tensor("w").source());
    }
  }

  @Test
  void missingFile() {
    String message =
        assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(file)).getMessage();
    assertTrue(message.startsWith("cannot read " + file + ": "), message);
    assertTrue(message.contains("NoSuchFileException"), message);
  }

  @Test
  void truncatedFile() {
    assertFails("FILE: file is 0 bytes, too short for the 8-byte header length", new byte[0]);
    assertFails(
        "FILE: file is 5 bytes, too short for the 8-byte header length",
        new byte[] {2, 0, 0, 0, 0});
  }

  @Test
  void headerLengthBeyondTheFile() {
    byte[] full = raw("{" + W + "}", 12);
    byte[] cut = java.util.Arrays.copyOf(full, 20);
    long headerLength = full.length - 8 - 12;
    assertFails(
        "FILE: header length "
            + headerLength
            + " exceeds the file: only 12 bytes follow the"
            + " 8-byte length",
        cut);
  }

  @Test
  void hugeHeaderLengthIsReadUnsigned() {
    assertFails(
        "FILE: header length 18446744073709551615 exceeds the file: only 2 bytes follow the 8-byte"
            + " length",
        raw(-1L, "{}".getBytes(StandardCharsets.UTF_8), 0));
    assertFails(
        "FILE: header length 9223372036854775807 exceeds the file: only 2 bytes follow the 8-byte"
            + " length",
        raw(Long.MAX_VALUE, "{}".getBytes(StandardCharsets.UTF_8), 0));
  }

  @Test
  void headerLengthAboveTheCap() throws IOException {
    long length = SafetensorsFile.MAX_HEADER_BYTES + 1;
    // A sparse file: the length field, then a hole up to the claimed size, so nothing is written.
    write(file, raw(length, new byte[0], 0));
    try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(8 + length);
    }
    SafetensorsException e =
        assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(file).close());
    assertEquals(
        file + ": header length 100000001 exceeds the limit of 100000000 bytes", e.getMessage());
  }

  @Test
  void headerThatIsNotJson() {
    String message = openFails(raw("not json", 0));
    assertTrue(
        message.startsWith(file + ": header is not valid JSON: Unrecognized token 'not'"), message);
    assertTrue(message.endsWith("(line 1, column 1)"), message);
  }

  @Test
  void headerThatIsNotUtf8() {
    byte[] header = {'{', '"', (byte) 0xC3, '"', ':', '1', '}', ' '};
    assertFails(
        "FILE: header is not valid UTF-8: malformed byte 0xC3 at header offset 2",
        raw(header.length, header, 0));
  }

  @Test
  void headerThatIsNotAnObject() {
    assertFails("FILE: header must be a JSON object, but found an array [1,2]", raw("[1, 2]", 0));
    assertFails("FILE: header must be a JSON object, but found null", raw("null", 0));
    assertFails(
        "FILE: header is empty (4 bytes of whitespace), expected a JSON object", raw("    ", 0));
    assertFails(
        "FILE: header is empty (0 bytes of whitespace), expected a JSON object", raw("", 0));
  }

  @Test
  void trailingGarbageAfterTheHeaderObject() {
    String message = openFails(raw("{} x", 0));
    assertTrue(message.startsWith(file + ": header is not valid JSON: "), message);
  }

  @Test
  void duplicateKey() {
    String message = openFails(raw("{" + W + "," + W + "}", 12));
    assertTrue(
        message.startsWith(file + ": header is not valid JSON: Duplicate field 'w'"), message);
  }

  @Test
  void duplicateKeyInsideAnEntry() {
    String message =
        openFails(raw("{'w':{'dtype':'F32','dtype':'F32','shape':[3],'data_offsets':[0,12]}}", 12));
    assertTrue(
        message.startsWith(file + ": header is not valid JSON: Duplicate field 'dtype'"), message);
  }

  @Test
  void deeplyNestedHeader() {
    String message = openFails(raw("{'__metadata__':" + "[".repeat(10_000), 0));
    assertTrue(message.startsWith(file + ": header is not valid JSON: "), message);
    assertTrue(message.contains("nesting depth"), message);
  }

  @Test
  void entryThatIsNotAnObject() {
    assertFails(
        "tensor 'w' in FILE: entry must be an object with fields [dtype, shape, data_offsets], but"
            + " found a number 5",
        raw("{'w':5}", 0));
  }

  @Test
  void missingAndExtraFields() {
    assertFails(
        "tensor 'w' in FILE: missing field 'shape'; expected exactly [dtype, shape, data_offsets]",
        raw("{'w':{'dtype':'F32','data_offsets':[0,12]}}", 12));
    assertFails(
        "tensor 'w' in FILE: unexpected field 'stride'; expected exactly [dtype, shape,"
            + " data_offsets]",
        raw("{'w':{'dtype':'F32','shape':[3],'data_offsets':[0,12],'stride':[1]}}", 12));
  }

  @Test
  void unknownDType() {
    assertFails(
        "unknown dtype 'F99' for tensor 'w' in FILE; expected one of [BOOL, U8, I8, F8_E5M2,"
            + " F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64]",
        raw("{'w':{'dtype':'F99','shape':[3],'data_offsets':[0,12]}}", 12));
    assertFails(
        "tensor 'w' in FILE: dtype must be a string, but found a number 4",
        raw("{'w':{'dtype':4,'shape':[3],'data_offsets':[0,12]}}", 12));
    String lower = openFails(raw("{'w':{'dtype':'f32','shape':[3],'data_offsets':[0,12]}}", 12));
    assertTrue(lower.startsWith("unknown dtype 'f32' for tensor 'w' in " + file), lower);
  }

  @Test
  void badShapes() {
    String rule = "tensor 'w' in FILE: shape must be an array of non-negative integers, but ";
    assertFails(
        rule + "found a number 3",
        raw("{'w':{'dtype':'F32','shape':3,'data_offsets':[0,12]}}", 12));
    assertFails(
        rule + "element 1 -3 is negative",
        raw("{'w':{'dtype':'F32','shape':[1,-3],'data_offsets':[0,12]}}", 12));
    assertFails(
        rule + "element 0 3.0 is not an integer",
        raw("{'w':{'dtype':'F32','shape':[3.0],'data_offsets':[0,12]}}", 12));
    assertFails(
        rule + "element 0 \"3\" is a string",
        raw("{'w':{'dtype':'F32','shape':['3'],'data_offsets':[0,12]}}", 12));
    assertFails(
        rule + "element 0 9223372036854775808 does not fit in a long",
        raw("{'w':{'dtype':'F32','shape':[9223372036854775808],'data_offsets':[0,12]}}", 12));
    assertFails(
        "tensor 'w' in FILE: shape [4294967296, 4294967296] of dtype F32 needs more than"
            + " 9223372036854775807 bytes",
        raw("{'w':{'dtype':'F32','shape':[4294967296,4294967296],'data_offsets':[0,12]}}", 12));
    assertFails(
        "tensor 'w' in FILE: shape [4611686018427387904] of dtype F32 needs more than"
            + " 9223372036854775807 bytes",
        raw("{'w':{'dtype':'F32','shape':[4611686018427387904],'data_offsets':[0,12]}}", 12));
  }

  @Test
  void badDataOffsets() {
    String rule =
        "tensor 'w' in FILE: data_offsets must be two non-negative integers [begin, end], but ";
    assertFails(
        rule + "found an array [0,6,12]",
        raw("{'w':{'dtype':'F32','shape':[3],'data_offsets':[0,6,12]}}", 12));
    assertFails(
        rule + "found an object {\"begin\":0}",
        raw("{'w':{'dtype':'F32','shape':[3],'data_offsets':{'begin':0}}}", 12));
    assertFails(
        rule + "begin -4 is negative",
        raw("{'w':{'dtype':'F32','shape':[3],'data_offsets':[-4,8]}}", 12));
    assertFails(
        rule + "end null is null",
        raw("{'w':{'dtype':'F32','shape':[3],'data_offsets':[0,null]}}", 12));
    assertFails(
        "tensor 'w' in FILE: data_offsets [12, 0] have begin > end; expected begin <= end",
        raw("{'w':{'dtype':'F32','shape':[3],'data_offsets':[12,0]}}", 12));
  }

  @Test
  void shapeAndOffsetSizeMismatch() {
    assertFails(
        "tensor 'w' in FILE: data_offsets [0, 10] hold 10 bytes, but dtype F32 and shape [3] need"
            + " 12",
        raw("{'w':{'dtype':'F32','shape':[3],'data_offsets':[0,10]}}", 10));
  }

  @Test
  void offsetsBeyondTheDataBuffer() {
    assertFails(
        "tensor 'w' in FILE: data_offsets [0, 12] end beyond the data buffer, which holds 8 bytes",
        raw("{" + W + "}", 8));
    assertFails(
        "tensor 'w' in FILE: data_offsets [9223372036854775795, 9223372036854775807] end beyond"
            + " the data buffer, which holds 12 bytes",
        raw(
            "{'w':{'dtype':'F32','shape':[3],"
                + "'data_offsets':[9223372036854775795,9223372036854775807]}}",
            12));
  }

  @Test
  void overlappingTensors() {
    assertFails(
        "FILE: tensor 'b' at data_offsets [8, 16] begins inside tensor 'a' at [0, 12]; tensors"
            + " must not overlap",
        raw(
            "{'a':{'dtype':'F32','shape':[3],'data_offsets':[0,12]},"
                + "'b':{'dtype':'F32','shape':[2],'data_offsets':[8,16]}}",
            16));
    assertFails(
        "FILE: tensor 'b' at data_offsets [0, 12] begins inside tensor 'a' at [0, 12]; tensors"
            + " must not overlap",
        raw(
            "{'a':{'dtype':'F32','shape':[3],'data_offsets':[0,12]},"
                + "'b':{'dtype':'I32','shape':[3],'data_offsets':[0,12]}}",
            12));
  }

  @Test
  void holeBetweenTensors() {
    assertFails(
        "FILE: data buffer bytes [12, 16) belong to no tensor (between tensor 'a' ending at 12 and"
            + " tensor 'b' beginning at 16); tensors must tile the data buffer with no holes",
        raw(
            "{'b':{'dtype':'F32','shape':[1],'data_offsets':[16,20]},"
                + "'a':{'dtype':'F32','shape':[3],'data_offsets':[0,12]}}",
            20));
    assertFails(
        "FILE: data buffer bytes [0, 4) belong to no tensor (before tensor 'w' beginning at 4);"
            + " tensors must tile the data buffer with no holes",
        raw("{'w':{'dtype':'F32','shape':[3],'data_offsets':[4,16]}}", 16));
  }

  @Test
  void trailingBytesAfterTheLastTensor() {
    assertFails(
        "FILE: data buffer holds 15 bytes, but the tensors end at 12: 3 trailing bytes belong to no"
            + " tensor",
        raw("{" + W + "}", 15));
    assertFails(
        "FILE: data buffer holds 1 bytes, but the tensors end at 0: 1 trailing bytes belong to no"
            + " tensor",
        raw("{}", 1));
  }

  @Test
  void zeroSizeTensorsMayShareAnOffset() {
    write(
        file,
        raw(
            "{'e':{'dtype':'F32','shape':[0,4],'data_offsets':[12,12]},"
                + "'z':{'dtype':'U8','shape':[0],'data_offsets':[12,12]},"
                + W
                + "}",
            12));
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertEquals(3, f.names().size());
    }
  }

  @Test
  void badMetadata() {
    assertFails(
        "FILE: __metadata__ must be an object of string values, but found an array [\"a\"]",
        raw("{'__metadata__':['a']}", 0));
    assertFails(
        "FILE: __metadata__ must be an object of string values, but key 'n' holds a number 1",
        raw("{'__metadata__':{'ok':'x','n':1}}", 0));
    assertFails(
        "FILE: __metadata__ must be an object of string values, but key 'o' holds an object {}",
        raw("{'__metadata__':{'o':{}}}", 0));
  }

  @Test
  void longValuesAreShortenedInMessages() {
    String big = "x".repeat(1000);
    String message = openFails(raw("{'__metadata__':{'k':['" + big + "']}}", 0));
    assertTrue(message.endsWith("... (1004 chars)"), message);
    assertTrue(message.length() < 300, message);
  }

  @Test
  void missingTensorAndClosedFile() {
    write(file, raw("{" + W + "}", 12));
    SafetensorsFile f = SafetensorsFile.open(file);
    SafetensorsException e = assertThrows(SafetensorsException.class, () -> f.tensor("v"));
    assertEquals("no tensor 'v' in " + file + " (it holds 1 tensors)", e.getMessage());
    TensorView w = f.tensor("w");
    f.close();
    f.close();
    IllegalStateException closed = assertThrows(IllegalStateException.class, () -> f.tensor("w"));
    assertEquals(file + " is closed; tensor 'w' is unavailable", closed.getMessage());
    assertInstanceOf(
        IllegalStateException.class, assertThrows(RuntimeException.class, w::toFloatArray));
  }
}
