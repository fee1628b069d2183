package io.q4spark.kernels.format;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.List;

/**
 * Writes a checkpoint's tensors as {@code model.safetensors}, or as {@code
 * model-0000i-of-0000n.safetensors} shards with the {@code model.safetensors.index.json} that maps
 * each tensor to its shard, as Hugging Face checkpoints do.
 */
final class ShardedSafetensorsWriter {
  private ShardedSafetensorsWriter() {}

  static void write(Path dir, List<SafetensorsWriter> shards) {
    if (shards.size() == 1) {
      shards.get(0).write(dir.resolve("model.safetensors"));
      return;
    }
    ObjectNode index = CheckpointJson.newObject();
    index.putObject("metadata");
    ObjectNode map = index.putObject("weight_map");
    for (int i = 0; i < shards.size(); i++) {
      String file = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
      for (String name : shards.get(i).names()) {
        map.put(name, file);
      }
      shards.get(i).write(dir.resolve(file));
    }
    CheckpointJson.write(dir.resolve(SafetensorsCheckpoint.INDEX_FILE), index);
  }
}
