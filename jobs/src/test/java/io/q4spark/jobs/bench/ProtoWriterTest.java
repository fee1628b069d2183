package io.q4spark.jobs.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import org.junit.jupiter.api.Test;

class ProtoWriterTest {
  private static byte[] bytes(int... values) {
    byte[] b = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      b[i] = (byte) values[i];
    }
    return b;
  }

  @Test
  void varintsFollowTheWireFormat() {
    // The protobuf encoding guide's example: field 1 = 150 is 08 96 01.
    assertArrayEquals(bytes(0x08, 0x96, 0x01), new ProtoWriter().varint(1, 150).toByteArray());
    assertArrayEquals(bytes(0x08, 0x00), new ProtoWriter().varint(1, 0).toByteArray());
    // Field 20 (AttributeProto.type) needs a two-byte key: 20 << 3 = 160 = a0 01.
    assertArrayEquals(bytes(0xa0, 0x01, 0x02), new ProtoWriter().varint(20, 2).toByteArray());
    // A negative int64 takes ten bytes.
    assertArrayEquals(
        bytes(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
        new ProtoWriter().varint(1, -1).toByteArray());
  }

  @Test
  void stringsBytesAndMessagesAreLengthDelimited() {
    // The guide's example: field 2 = "testing" is 12 07 74 65 73 74 69 6e 67.
    assertArrayEquals(
        bytes(0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67),
        new ProtoWriter().string(2, "testing").toByteArray());
    // And field 3 holding a message with field 1 = 150 is 1a 03 08 96 01.
    assertArrayEquals(
        bytes(0x1a, 0x03, 0x08, 0x96, 0x01),
        new ProtoWriter().message(3, new ProtoWriter().varint(1, 150)).toByteArray());
  }

  @Test
  void largeArraysAreReferencedAndSizesAddUp() {
    byte[] big = new byte[100_000];
    big[0] = 1;
    big[big.length - 1] = 2;
    ProtoWriter inner = new ProtoWriter().string(1, "x").bytes(9, big).varint(2, 7);
    ProtoWriter outer = new ProtoWriter().varint(1, 8).message(7, inner).string(2, "y");
    byte[] encoded = outer.toByteArray();
    assertEquals(outer.size(), encoded.length);
    // key(7) + varint(inner size) + inner: inner = 3 ("x") + 1 + 3 (length 100000) + big + 2.
    assertEquals(2 + 1 + 3 + 3 + 1 + 3 + big.length + 2 + 3, encoded.length);
    ByteArrayOutputStream streamed = new ByteArrayOutputStream();
    outer.writeTo(streamed);
    assertArrayEquals(encoded, streamed.toByteArray());
  }
}
