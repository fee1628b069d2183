package io.q4spark.kernels.format;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * The tensors of a checkpoint directory, spread over one or more safetensors files.
 *
 * <p>If the directory holds {@value #INDEX_FILE} (the Hugging Face sharding index), its {@code
 * weight_map} decides: each named tensor is read from the shard it names, and every shard must
 * really hold the tensors mapped to it. Tensors a shard holds beyond those are not exposed, as the
 * index is the checkpoint's table of contents. Without an index, every {@code *.safetensors} file
 * in the directory is opened and their tensors merged; a name in two files is an error, since which
 * copy is meant cannot be known.
 */
public final class SafetensorsCheckpoint implements TensorSource {
  /** The sharding index written by Hugging Face {@code save_pretrained}. */
  public static final String INDEX_FILE = "model.safetensors.index.json";

  static final String FILE_SUFFIX = ".safetensors";
  private static final String WEIGHT_MAP = "weight_map";

  private final Path directory;
  private final String description;
  private final List<SafetensorsFile> files;
  private final Map<String, SafetensorsFile> owners;

  private SafetensorsCheckpoint(
      Path directory,
      String description,
      List<SafetensorsFile> files,
      Map<String, SafetensorsFile> owners) {
    this.directory = directory;
    this.description = description;
    this.files = List.copyOf(files);
    this.owners = Collections.unmodifiableMap(owners);
  }

  /**
   * Opens a checkpoint directory, through its index if it has one.
   *
   * @throws SafetensorsException naming the directory, index or shard, and the problem
   */
  public static SafetensorsCheckpoint open(Path dir) {
    Objects.requireNonNull(dir, "dir");
    if (!Files.isDirectory(dir)) {
      throw new SafetensorsException(dir + " is not a directory; expected a checkpoint directory");
    }
    Path index = dir.resolve(INDEX_FILE);
    return Files.exists(index) ? openIndexed(dir, index) : openAll(dir);
  }

  /** A checkpoint of a single file; {@link #directory()} is the file's directory. */
  public static SafetensorsCheckpoint of(Path file) {
    SafetensorsFile opened = SafetensorsFile.open(file);
    Map<String, SafetensorsFile> owners = new TreeMap<>();
    for (String name : opened.names()) {
      owners.put(name, opened);
    }
    Path parent = file.toAbsolutePath().getParent();
    return new SafetensorsCheckpoint(parent, file.toString(), List.of(opened), owners);
  }

  private static SafetensorsCheckpoint openIndexed(Path dir, Path index) {
    Map<String, String> weightMap = readWeightMap(index);
    // Shard name -> the tensors the index puts in it; sorted so shards open in a fixed order.
    Map<String, List<String>> byShard = new TreeMap<>();
    for (Map.Entry<String, String> e : weightMap.entrySet()) {
      byShard.computeIfAbsent(e.getValue(), shard -> new ArrayList<>()).add(e.getKey());
    }
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      Map<String, SafetensorsFile> owners = new TreeMap<>();
      for (Map.Entry<String, List<String>> e : byShard.entrySet()) {
        String shard = e.getKey();
        List<String> names = e.getValue();
        Path shardPath = dir.resolve(shard);
        if (!Files.isRegularFile(shardPath)) {
          throw new SafetensorsException(
              index
                  + " maps "
                  + names.size()
                  + " tensors (first '"
                  + names.getFirst()
                  + "') to shard '"
                  + shard
                  + "', but "
                  + shardPath
                  + " is not a file");
        }
        SafetensorsFile file = SafetensorsFile.open(shardPath);
        opened.add(file);
        for (String name : names) {
          if (!file.contains(name)) {
            throw new SafetensorsException(
                index
                    + " maps tensor '"
                    + name
                    + "' to shard '"
                    + shard
                    + "', but "
                    + shardPath
                    + " holds no such tensor ("
                    + file.names().size()
                    + " tensors)");
          }
          owners.put(name, file);
        }
      }
      return new SafetensorsCheckpoint(dir, dir.toString(), opened, owners);
    } catch (RuntimeException | Error e) {
      closeAll(opened, e);
      throw e;
    }
  }

  /** The index's weight map, tensor name to shard file name, with every shard name checked. */
  private static Map<String, String> readWeightMap(Path index) {
    byte[] bytes;
    try {
      long size = Files.size(index);
      // The index lists one line per tensor; the header cap bounds it just as well.
      if (size > SafetensorsFile.MAX_HEADER_BYTES) {
        throw new SafetensorsException(
            index
                + " is "
                + size
                + " bytes, more than the limit of "
                + SafetensorsFile.MAX_HEADER_BYTES
                + " for an index");
      }
      bytes = Files.readAllBytes(index);
    } catch (IOException e) {
      throw new SafetensorsException("cannot read " + index + ": " + e, e);
    }
    String source = index.toString();
    JsonNode root = SafetensorsHeader.parseJson(source, "index", bytes);
    if (!root.isObject()) {
      throw new SafetensorsException(
          source + ": index must be a JSON object, but found " + SafetensorsHeader.found(root));
    }
    JsonNode map = root.get(WEIGHT_MAP);
    String rule =
        source + ": " + WEIGHT_MAP + " must be an object of tensor name to shard file name";
    if (map == null) {
      throw new SafetensorsException(rule + ", but the index has no " + WEIGHT_MAP);
    }
    if (!map.isObject()) {
      throw new SafetensorsException(rule + ", but found " + SafetensorsHeader.found(map));
    }
    if (map.isEmpty()) {
      throw new SafetensorsException(rule + ", but it is empty");
    }
    Map<String, String> weightMap = new TreeMap<>();
    for (Map.Entry<String, JsonNode> e : map.properties()) {
      JsonNode shard = e.getValue();
      if (!shard.isTextual()) {
        throw new SafetensorsException(
            rule + ", but tensor '" + e.getKey() + "' maps to " + SafetensorsHeader.found(shard));
      }
      checkShardName(source, e.getKey(), shard.textValue());
      weightMap.put(e.getKey(), shard.textValue());
    }
    return weightMap;
  }

  /**
   * Shards are plain file names in the checkpoint directory. Anything with a separator or {@code
   * ..} could make an index read files elsewhere, so it is refused rather than resolved.
   */
  private static void checkShardName(String source, String tensor, String shard) {
    if (shard.isEmpty()
        || shard.contains("/")
        || shard.contains("\\")
        || shard.contains("..")
        || shard.indexOf('\0') >= 0) {
      throw new SafetensorsException(
          source
              + ": tensor '"
              + tensor
              + "' maps to shard '"
              + shard
              + "'; expected a plain file name in the checkpoint directory (no '/', '\\' or"
              + " '..')");
    }
  }

  private static SafetensorsCheckpoint openAll(Path dir) {
    List<Path> paths = new ArrayList<>();
    try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir, "*" + FILE_SUFFIX)) {
      for (Path p : stream) {
        if (Files.isRegularFile(p)) {
          paths.add(p);
        }
      }
    } catch (IOException e) {
      throw new SafetensorsException("cannot list " + dir + ": " + e, e);
    }
    if (paths.isEmpty()) {
      throw new SafetensorsException(
          "no " + FILE_SUFFIX + " file in " + dir + " (and no " + INDEX_FILE + ")");
    }
    Collections.sort(paths);
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      Map<String, SafetensorsFile> owners = new TreeMap<>();
      for (Path p : paths) {
        SafetensorsFile file = SafetensorsFile.open(p);
        opened.add(file);
        for (String name : file.names()) {
          SafetensorsFile previous = owners.putIfAbsent(name, file);
          if (previous != null) {
            throw new SafetensorsException(
                "tensor '"
                    + name
                    + "' is in both "
                    + previous.path()
                    + " and "
                    + p
                    + "; a checkpoint directory without "
                    + INDEX_FILE
                    + " must hold each tensor once");
          }
        }
      }
      return new SafetensorsCheckpoint(dir, dir.toString(), opened, owners);
    } catch (RuntimeException | Error e) {
      closeAll(opened, e);
      throw e;
    }
  }

  private static void closeAll(List<SafetensorsFile> files, Throwable failure) {
    for (SafetensorsFile f : files) {
      try {
        f.close();
      } catch (RuntimeException e) {
        failure.addSuppressed(e);
      }
    }
  }

  /** The checkpoint directory (for {@link #of}, the file's directory). */
  public Path directory() {
    return directory;
  }

  @Override
  public boolean contains(String name) {
    return owners.containsKey(name);
  }

  @Override
  public TensorView tensor(String name) {
    SafetensorsFile file = owners.get(name);
    if (file == null) {
      throw new SafetensorsException(
          "no tensor '"
              + name
              + "' in checkpoint "
              + description
              + " ("
              + owners.size()
              + " tensors in "
              + files.size()
              + " files)");
    }
    return file.tensor(name);
  }

  @Override
  public Set<String> names() {
    return owners.keySet();
  }

  @Override
  public String describe() {
    return description;
  }

  /**
   * Closes every shard, even if one fails; the first failure is thrown with the rest suppressed.
   */
  @Override
  public void close() {
    RuntimeException failure = null;
    for (SafetensorsFile f : files) {
      try {
        f.close();
      } catch (RuntimeException e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  @Override
  public String toString() {
    return "SafetensorsCheckpoint[" + description + ", " + files.size() + " files]";
  }
}
