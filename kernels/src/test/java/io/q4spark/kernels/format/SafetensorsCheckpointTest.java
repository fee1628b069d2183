package io.q4spark.kernels.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsCheckpointTest {
  private static final String SHARD_1 = "model-00001-of-00002.safetensors";
  private static final String SHARD_2 = "model-00002-of-00002.safetensors";

  @TempDir Path dir;

  private void writeShards() {
    new SafetensorsWriter()
        .addInts("layers.0.w", new long[] {2}, new int[] {1, 2})
        .addInts("layers.0.b", new long[] {1}, new int[] {3})
        .write(dir.resolve(SHARD_1));
    new SafetensorsWriter()
        .addInts("layers.1.w", new long[] {2}, new int[] {4, 5})
        .write(dir.resolve(SHARD_2));
  }

  private Path writeIndex(String json) throws IOException {
    return Files.writeString(
        dir.resolve(SafetensorsCheckpoint.INDEX_FILE), json.replace('\'', '"'));
  }

  private String openFails() {
    return assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(dir).close())
        .getMessage();
  }

  @Test
  void shardedCheckpointThroughItsIndex() throws IOException {
    writeShards();
    writeIndex(
        "{'metadata':{'total_size':20},'weight_map':{"
            + "'layers.0.w':'"
            + SHARD_1
            + "','layers.0.b':'"
            + SHARD_1
            + "','layers.1.w':'"
            + SHARD_2
            + "'}}");
    try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir)) {
      assertEquals(List.of("layers.0.b", "layers.0.w", "layers.1.w"), List.copyOf(c.names()));
      assertArrayEquals(new int[] {4, 5}, c.tensor("layers.1.w").toIntArray());
      assertArrayEquals(new int[] {3}, c.tensor("layers.0.b").toIntArray());
      assertEquals(dir.resolve(SHARD_2).toString(), c.tensor("layers.1.w").source());
      assertEquals(dir, c.directory());
      assertEquals(dir.toString(), c.describe());
      assertTrue(c.contains("layers.0.w"));
      assertFalse(c.contains("layers.2.w"));
      assertEquals(
          "no tensor 'layers.2.w' in checkpoint " + dir + " (3 tensors in 2 files)",
          assertThrows(SafetensorsException.class, () -> c.tensor("layers.2.w")).getMessage());
    }
  }

  @Test
  void indexTakesOnlyTheTensorsItNames() throws IOException {
    writeShards();
    writeIndex("{'weight_map':{'layers.1.w':'" + SHARD_2 + "'}}");
    try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir)) {
      assertEquals(List.of("layers.1.w"), List.copyOf(c.names()));
    }
  }

  @Test
  void indexNamingATensorTheShardDoesNotHold() throws IOException {
    writeShards();
    Path index = writeIndex("{'weight_map':{'layers.0.w':'" + SHARD_2 + "'}}");
    assertEquals(
        index
            + " maps tensor 'layers.0.w' to shard '"
            + SHARD_2
            + "', but "
            + dir.resolve(SHARD_2)
            + " holds no such tensor (1 tensors)",
        openFails());
  }

  @Test
  void indexNamingAMissingShard() throws IOException {
    writeShards();
    Path index = writeIndex("{'weight_map':{'a':'gone.safetensors','b':'gone.safetensors'}}");
    assertEquals(
        index
            + " maps 2 tensors (first 'a') to shard 'gone.safetensors', but "
            + dir.resolve("gone.safetensors")
            + " is not a file",
        openFails());
  }

  @Test
  void indexShardNamesMustStayInTheDirectory() throws IOException {
    for (String shard : List.of("../evil.safetensors", "sub/x.safetensors", "..", "")) {
      Path index = writeIndex("{'weight_map':{'w':'" + shard + "'}}");
      assertEquals(
          index
              + ": tensor 'w' maps to shard '"
              + shard
              + "'; expected a plain file name in the checkpoint directory (no '/', '\\' or '..')",
          openFails());
    }
  }

  @Test
  void malformedIndex() throws IOException {
    Path index = writeIndex("{'metadata':{}}");
    String rule = index + ": weight_map must be an object of tensor name to shard file name";
    assertEquals(rule + ", but the index has no weight_map", openFails());
    writeIndex("{'weight_map':['a']}");
    assertEquals(rule + ", but found an array [\"a\"]", openFails());
    writeIndex("{'weight_map':{}}");
    assertEquals(rule + ", but it is empty", openFails());
    writeIndex("{'weight_map':{'w':7}}");
    assertEquals(rule + ", but tensor 'w' maps to a number 7", openFails());
    writeIndex("[]");
    assertEquals(index + ": index must be a JSON object, but found an array []", openFails());
    writeIndex("{'weight_map':{'w':'a','w':'b'}}");
    String message = openFails();
    assertTrue(
        message.startsWith(index + ": index is not valid JSON: Duplicate field 'w'"), message);
  }

  @Test
  void brokenShardIsReportedByName() throws IOException {
    writeShards();
    Files.write(dir.resolve(SHARD_2), new byte[] {1, 2, 3});
    assertEquals(
        dir.resolve(SHARD_2) + ": file is 3 bytes, too short for the 8-byte header length",
        openFails());
  }

  @Test
  void directoryWithoutIndexMergesEveryFile() throws IOException {
    writeShards();
    Files.writeString(dir.resolve("README.md"), "not a checkpoint");
    try (SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir)) {
      assertEquals(List.of("layers.0.b", "layers.0.w", "layers.1.w"), List.copyOf(c.names()));
      assertArrayEquals(new int[] {1, 2}, c.tensor("layers.0.w").toIntArray());
    }
  }

  @Test
  void directoryWithTheSameTensorInTwoFiles() {
    writeShards();
    new SafetensorsWriter()
        .addInts("layers.0.b", new long[] {1}, new int[] {9})
        .write(dir.resolve("extra.safetensors"));
    assertEquals(
        "tensor 'layers.0.b' is in both "
            + dir.resolve("extra.safetensors")
            + " and "
            + dir.resolve(SHARD_1)
            + "; a checkpoint directory without model.safetensors.index.json must hold each tensor"
            + " once",
        openFails());
  }

  @Test
  void directoryWithoutSafetensorsFiles() throws IOException {
    Files.writeString(dir.resolve("model.bin"), "x");
    assertEquals(
        "no .safetensors file in " + dir + " (and no model.safetensors.index.json)", openFails());
  }

  @Test
  void notADirectory() {
    Path missing = dir.resolve("missing");
    assertEquals(
        missing + " is not a directory; expected a checkpoint directory",
        assertThrows(SafetensorsException.class, () -> SafetensorsCheckpoint.open(missing))
            .getMessage());
  }

  @Test
  void singleFile() {
    writeShards();
    Path file = dir.resolve(SHARD_1);
    try (SafetensorsCheckpoint c = SafetensorsCheckpoint.of(file)) {
      assertEquals(List.of("layers.0.b", "layers.0.w"), List.copyOf(c.names()));
      assertEquals(file.toString(), c.describe());
      assertEquals(dir, c.directory());
      assertEquals(
          "no tensor 'x' in checkpoint " + file + " (2 tensors in 1 files)",
          assertThrows(SafetensorsException.class, () -> c.tensor("x")).getMessage());
    }
  }

  @Test
  void closeReleasesEveryShard() {
    writeShards();
    SafetensorsCheckpoint c = SafetensorsCheckpoint.open(dir);
    TensorView w0 = c.tensor("layers.0.w");
    TensorView w1 = c.tensor("layers.1.w");
    c.close();
    assertThrows(IllegalStateException.class, w0::toIntArray);
    assertThrows(IllegalStateException.class, w1::toIntArray);
  }
}
