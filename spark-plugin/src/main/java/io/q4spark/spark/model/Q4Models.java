package io.q4spark.spark.model;

import io.q4spark.spark.conf.Q4Conf;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.apache.spark.SparkContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.SparkSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver's registry of models by name. {@link #register} reads a checkpoint once, checks that
 * its layers chain, and broadcasts the serialised layers once, in chunks of at most {@value
 * ModelCodec#DEFAULT_CHUNK_BYTES} bytes so models over 2 GiB work; every later job on the model
 * reuses that broadcast, and each executor materialises it once ({@link ModelCache}).
 */
public final class Q4Models {
  /**
   * Option: how executors get the weights. {@value #LOAD_BROADCAST} (the default): read once on the
   * driver and broadcast once, in chunks. {@value #LOAD_EXECUTOR}: each executor memory-maps the
   * checkpoint itself, once, from the same path (shared storage) or, when that path does not exist
   * there, from the copy {@code spark.files} / {@code SparkContext.addFile} shipped: for models too
   * large to broadcast.
   */
  public static final String LOAD = "load";

  public static final String LOAD_BROADCAST = "broadcast";

  public static final String LOAD_EXECUTOR = "executor";

  private static final java.util.concurrent.atomic.AtomicLong NEXT_LOCAL_ID =
      new java.util.concurrent.atomic.AtomicLong();

  private static final Logger LOG = LoggerFactory.getLogger(Q4Models.class);
  private static final AtomicInteger BROADCASTS = new AtomicInteger();
  private static final Map<String, ModelHandle> MODELS = new TreeMap<>();

  /** Chunk size of new broadcasts; tests lower it to exercise models of many chunks. */
  static volatile int chunkBytes = ModelCodec.DEFAULT_CHUNK_BYTES;

  private Q4Models() {}

  /** How many model broadcasts were made in this JVM (for tests). */
  public static int broadcasts() {
    return BROADCASTS.get();
  }

  /**
   * Reads the checkpoint in {@code checkpointDir} on the driver and broadcasts it as model {@code
   * name}, replacing a model of that name. {@code options} are those of {@link ModelCheckpoint}
   * ({@code format}, {@code layers}, {@code activation}, {@code activations}).
   *
   * @throws IllegalArgumentException when the checkpoint or the options are not valid, naming what
   * @throws IllegalStateException when Spark runs without the q4spark plugin
   */
  public static ModelHandle register(
      SparkSession spark, String name, String checkpointDir, Map<String, String> options) {
    SparkContext sc = spark.sparkContext();
    Q4Conf.requirePlugin(sc.getConf().get("spark.plugins", null), "Q4Models.register");
    if (name == null || name.isBlank()) {
      throw new IllegalArgumentException("a model name must not be blank, but was '" + name + "'");
    }
    long start = System.nanoTime();
    Map<String, String> checkpointOptions = new java.util.HashMap<>(options);
    String load = checkpointOptions.remove(LOAD);
    if (load != null && !load.equals(LOAD_BROADCAST) && !load.equals(LOAD_EXECUTOR)) {
      throw new IllegalArgumentException(
          "model '"
              + name
              + "': The value of option "
              + LOAD
              + " should be "
              + LOAD_BROADCAST
              + " or "
              + LOAD_EXECUTOR
              + ", but was "
              + load);
    }
    ModelHandle handle;
    if (LOAD_EXECUTOR.equals(load)) {
      // Checked here once, a layer at a time (the driver never holds the whole model); the
      // executors read it again for themselves.
      ModelCheckpoint.Summary summary =
          ModelCheckpoint.inspect(name, Path.of(checkpointDir), checkpointOptions);
      handle =
          new ModelHandle(
              name,
              summary.k(),
              summary.n(),
              summary.described(),
              null,
              checkpointDir,
              checkpointOptions,
              -NEXT_LOCAL_ID.incrementAndGet());
      LOG.info(
          "q4spark: registered model '{}' from {} ({} layers), loaded by each executor, in {} ms",
          name,
          checkpointDir,
          summary.described().size(),
          (System.nanoTime() - start) / 1_000_000);
    } else {
      // Read (memory-mapped) and checked on the driver, then broadcast once.
      List<ModelLayer> layers =
          ModelCheckpoint.read(name, Path.of(checkpointDir), checkpointOptions);
      int k = layers.getFirst().linear().config().k();
      int n = layers.getLast().linear().config().n();
      List<String> described = layers.stream().map(ModelLayer::describe).toList();
      ChunkedBytes bytes = ModelCodec.encode(layers, chunkBytes);
      Broadcast<ChunkedBytes> broadcast = JavaSparkContext.fromSparkContext(sc).broadcast(bytes);
      BROADCASTS.incrementAndGet();
      handle = new ModelHandle(name, k, n, described, broadcast);
      LOG.info(
          "q4spark: registered model '{}' from {} ({} layers, {} bytes in {} chunks, broadcast {})"
              + " in {} ms",
          name,
          checkpointDir,
          layers.size(),
          bytes.size(),
          bytes.chunks().length,
          broadcast.id(),
          (System.nanoTime() - start) / 1_000_000);
    }
    ModelHandle old;
    synchronized (MODELS) {
      old = MODELS.put(name, handle);
    }
    if (old != null) {
      free(old);
    }
    return handle;
  }

  /**
   * Removes model {@code name}: its broadcast is destroyed and executors free their materialised
   * copy (at once in this JVM, at their next sync elsewhere).
   *
   * @return whether a model of that name was registered
   */
  public static boolean unregister(String name) {
    ModelHandle h;
    synchronized (MODELS) {
      h = MODELS.remove(name);
    }
    if (h == null) {
      return false;
    }
    free(h);
    return true;
  }

  /**
   * The registered model {@code name}.
   *
   * @throws IllegalArgumentException naming the registered models when there is none of that name
   */
  public static ModelHandle get(String name) {
    synchronized (MODELS) {
      ModelHandle h = MODELS.get(name);
      if (h == null) {
        throw new IllegalArgumentException(
            "no model named '"
                + name
                + "' is registered; registered models: "
                + MODELS.keySet()
                + " (Q4Models.register adds one)");
      }
      return h;
    }
  }

  /** The registered names, sorted. */
  public static List<String> names() {
    synchronized (MODELS) {
      return List.copyOf(MODELS.keySet());
    }
  }

  /** The broadcast ids of the registered models: executors keep only these materialised. */
  public static Set<Long> liveBroadcastIds() {
    synchronized (MODELS) {
      return MODELS.values().stream()
          .map(ModelHandle::broadcastId)
          .collect(Collectors.toUnmodifiableSet());
    }
  }

  /** Forgets every model (the application ended; its broadcasts went with it). */
  public static void clear() {
    List<ModelHandle> all;
    synchronized (MODELS) {
      all = List.copyOf(MODELS.values());
      MODELS.clear();
    }
    all.forEach(h -> ModelCache.evictEverywhere(h.broadcastId()));
  }

  private static void free(ModelHandle h) {
    ModelCache.evictEverywhere(h.broadcastId());
    if (h.loadedByExecutors()) {
      return;
    }
    try {
      h.weights().destroy();
    } catch (RuntimeException e) {
      LOG.warn(
          "q4spark: could not destroy the broadcast of model '{}': {}", h.name(), e.toString());
    }
  }
}
