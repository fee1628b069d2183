package io.q4spark.kernels.format;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Builds raw safetensors bytes by hand, so tests can write files the writer would never produce.
 */
final class SafetensorsTestFiles {
  private SafetensorsTestFiles() {}

  /**
   * A file with this header and {@code dataBytes} bytes of data (0, 1, 2, ...). Single quotes in
   * the header become double quotes, which keeps JSON literals in tests readable.
   */
  static byte[] raw(String header, int dataBytes) {
    byte[] json = header.replace('\'', '"').getBytes(StandardCharsets.UTF_8);
    return raw(json.length, json, dataBytes);
  }

  /** A file whose length field says {@code headerLength}, whatever the header bytes are. */
  static byte[] raw(long headerLength, byte[] header, int dataBytes) {
    ByteBuffer b =
        ByteBuffer.allocate(Long.BYTES + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(headerLength).put(header);
    for (int i = 0; i < dataBytes; i++) {
      b.put((byte) i);
    }
    return b.array();
  }

  static Path write(Path path, byte[] bytes) {
    try {
      return Files.write(path, bytes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
