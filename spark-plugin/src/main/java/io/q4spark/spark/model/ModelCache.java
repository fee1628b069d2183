package io.q4spark.spark.model;

import io.q4spark.kernels.KernelOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArraySet;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.apache.spark.SparkFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One executor's materialised models, keyed by broadcast id: the first task to use a model
 * deserialises the broadcast and prepares its layers; every later task of the executor shares the
 * result. Entries go when the driver unregisters the model ({@link #retainOnly}, or at once when
 * the driver runs in this JVM) and when the executor shuts down.
 */
public final class ModelCache implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ModelCache.class);
  private static final AtomicInteger MATERIALIZATIONS = new AtomicInteger();

  /** The caches of this JVM, so the driver can evict at once in local mode. */
  private static final Set<ModelCache> LOCAL = new CopyOnWriteArraySet<>();

  private final Supplier<KernelOptions> options;
  private final Map<Long, LoadedModel> models = new ConcurrentHashMap<>();

  public ModelCache(Supplier<KernelOptions> options) {
    this.options = options;
    LOCAL.add(this);
  }

  /** How many times a model was materialised in this JVM (for tests). */
  public static int materializations() {
    return MATERIALIZATIONS.get();
  }

  /** Evicts broadcast {@code id} from every cache of this JVM. */
  static void evictEverywhere(long id) {
    LOCAL.forEach(c -> c.evict(id));
  }

  /**
   * The model of {@code handle}, materialised on first use, with a use taken: call {@link
   * LoadedModel#release} when done.
   */
  public LoadedModel acquire(ModelHandle handle) {
    while (true) {
      LoadedModel m = models.computeIfAbsent(handle.broadcastId(), id -> materialize(handle));
      if (m.retain()) {
        return m;
      }
      models.remove(handle.broadcastId(), m);
    }
  }

  private LoadedModel materialize(ModelHandle handle) {
    long start = System.nanoTime();
    List<ModelLayer> layers =
        handle.loadedByExecutors()
            ? ModelCheckpoint.read(handle.name(), checkpointHere(handle), handle.options())
            : ModelCodec.decode(handle.weights().value());
    LoadedModel m = LoadedModel.prepare(handle.name(), layers, options.get());
    MATERIALIZATIONS.incrementAndGet();
    LOG.info(
        "q4spark: materialised model '{}' (broadcast {}) in {} ms, kernels {}",
        handle.name(),
        handle.broadcastId(),
        (System.nanoTime() - start) / 1_000_000,
        m.kernels());
    return m;
  }

  /**
   * Where this executor finds an executor-loaded model's checkpoint: the registered path when it
   * exists here (shared storage, local mode), else the copy {@code spark.files} shipped under the
   * directory's name.
   */
  static Path checkpointHere(ModelHandle handle) {
    Path registered = Path.of(handle.checkpoint());
    if (Files.isDirectory(registered)) {
      return registered;
    }
    String shipped = null;
    try {
      shipped = SparkFiles.get(registered.getFileName().toString());
    } catch (RuntimeException e) {
      // no SparkContext files here: reported below
    }
    if (shipped != null && Files.isDirectory(Path.of(shipped))) {
      return Path.of(shipped);
    }
    throw new IllegalStateException(
        "model '"
            + handle.name()
            + "': this executor finds its checkpoint neither at "
            + registered
            + " nor as a spark.files copy ("
            + shipped
            + "); put it on storage every executor reads, or ship the directory with"
            + " SparkContext.addFile(path, true)");
  }

  /** Whether broadcast {@code id} is materialised here. */
  public boolean contains(long id) {
    return models.containsKey(id);
  }

  /** Frees broadcast {@code id}'s model (once its current users are done). */
  public void evict(long id) {
    LoadedModel m = models.remove(id);
    if (m != null) {
      m.retire();
      LOG.info("q4spark: freed model '{}' (broadcast {})", m.name(), id);
    }
  }

  /** Frees every model whose broadcast id is not in {@code live}. */
  public void retainOnly(Set<Long> live) {
    for (Long id : models.keySet()) {
      if (!live.contains(id)) {
        evict(id);
      }
    }
  }

  @Override
  public void close() {
    LOCAL.remove(this);
    for (Long id : models.keySet()) {
      evict(id);
    }
  }
}
