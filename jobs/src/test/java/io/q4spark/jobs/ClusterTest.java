package io.q4spark.jobs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.KernelOptions;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.Q4Linear;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.format.CompressedTensorsCheckpoint;
import io.q4spark.kernels.format.QuantizationArgs;
import io.q4spark.kernels.quantize.Int4WeightQuantizer;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import io.q4spark.spark.Q4;
import io.q4spark.spark.Q4SparkPlugin;
import io.q4spark.spark.model.ModelCache;
import io.q4spark.spark.model.Q4Models;
import io.q4spark.spark.plugin.Q4ExecutorPlugin;
import java.io.File;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.spark.ExecutorLostFailure;
import org.apache.spark.SparkEnv;
import org.apache.spark.Success$;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

/**
 * {@link Q4#apply} on a real Spark standalone cluster: a Master and two Workers run as separate
 * JVMs on 127.0.0.1 (the Spark jars of the test class path, an empty SPARK_HOME), this JVM is the
 * driver, and each Worker runs one single-core executor. Checked from the executors' side (every
 * output row carries its executor's counters): one plugin init and one model materialisation per
 * executor, outputs equal to the scalar reference computed here; and when a task halts its executor
 * mid-partition, the task is retried elsewhere and the job's output is the same, every row exactly
 * once.
 *
 * <p>When the Master or a Worker cannot start on this machine the tests are skipped with the
 * reason; {@code -Dq4spark.cluster.required=true} turns that skip into a failure. Logs of the
 * daemons and executors stay in {@code target/cluster-test}.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterTest {
  private static final long SEED = 20261125;

  /** The golden tolerances for fp16 outputs: |got - ref| <= ATOL + RTOL * |ref|. */
  private static final double RTOL = 1e-2;

  private static final double ATOL = 1e-2;

  private static final int K = 64;
  private static final int HIDDEN = 96;
  private static final int N = 32;
  private static final int GROUP = 32;

  /** Enough rows that every partition holds several batches and a tail. */
  private static final int ROWS = 3000;

  private static final int PARTITIONS = 6;
  private static final int BATCH_ROWS = 128;

  /** The partition whose first attempt halts its executor, after its first output row. */
  private static final int KILLED_PARTITION = 3;

  /** Exit status of the halted executor, to recognise it in the logs. */
  private static final int KILLED_EXIT = 57;

  /** Deadline for the Master's port and for both executors to register (JVM starts on 2 cores). */
  private static final long START_SECONDS = 60;

  /** How long a daemon gets to stop on SIGTERM (killing its executors) before SIGKILL. */
  private static final long STOP_SECONDS = 10;

  /** The daemons' heap: they only schedule, and five JVMs share the machine. */
  private static final String DAEMON_HEAP = "-Xmx256m";

  private static final String MODEL = "cluster_mlp";

  private static final Path LOGS = Path.of("target", "cluster-test").toAbsolutePath();

  private static final StructType SCHEMA =
      new StructType()
          .add("id", DataTypes.IntegerType, false)
          .add("features", DataTypes.createArrayType(DataTypes.FloatType, false), false);

  private static final List<Process> DAEMONS = new CopyOnWriteArrayList<>();
  private static final List<Process> WORKERS = new CopyOnWriteArrayList<>();
  private static final List<SparkListenerTaskEnd> TASK_ENDS = new CopyOnWriteArrayList<>();
  private static Thread cleanup;
  private static SparkSession spark;
  private static List<QuantizedLinear> mlp;
  private static float[][] data;

  @BeforeAll
  static void startCluster() throws Exception {
    System.out.println("ClusterTest seed " + SEED);
    makeModelAndData();
    deleteRecursively(LOGS);
    Path sparkHome = Files.createDirectories(LOGS.resolve("spark-home"));
    // A Worker builds executor class paths from SPARK_HOME/jars: empty here, extraClassPath has
    // all.
    Files.createDirectories(sparkHome.resolve("jars"));
    cleanup = new Thread(ClusterTest::destroyDaemons, "ClusterTest cleanup");
    Runtime.getRuntime().addShutdownHook(cleanup);

    String classPath = System.getProperty("java.class.path");
    List<String> flags = jvmFlags();
    Map<String, String> env =
        Map.of(
            "SPARK_HOME",
            sparkHome.toString(),
            "SPARK_SCALA_VERSION",
            "2.13",
            "SPARK_LOCAL_IP",
            "127.0.0.1",
            "JAVA_HOME",
            System.getProperty("java.home"));
    int masterPort = freePort();
    Process master =
        launch(
            "master",
            classPath,
            flags,
            env,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            Integer.toString(masterPort),
            "--webui-port",
            Integer.toString(freePort()));
    awaitPort(master, "master", masterPort);
    String masterUrl = "spark://127.0.0.1:" + masterPort;
    for (int w = 0; w < 2; w++) {
      WORKERS.add(
          launch(
              "worker-" + w,
              classPath,
              flags,
              env,
              "org.apache.spark.deploy.worker.Worker",
              "--host",
              "127.0.0.1",
              "--cores",
              "1",
              "--memory",
              "1g",
              "--webui-port",
              Integer.toString(freePort()),
              "--work-dir",
              Files.createDirectories(LOGS.resolve("worker-" + w)).toString(),
              masterUrl));
    }

    spark =
        SparkSession.builder()
            .master(masterUrl)
            .appName("ClusterTest")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.executor.instances", "2")
            .config("spark.executor.cores", "1")
            .config("spark.cores.max", "2")
            .config("spark.executor.memory", "512m")
            .config("spark.executor.extraClassPath", classPath)
            .config("spark.executor.extraJavaOptions", String.join(" ", flags))
            .config("spark.plugins", Q4SparkPlugin.class.getName())
            .config("spark.q4.batch.rows", Integer.toString(BATCH_ROWS))
            .getOrCreate();
    assertEquals(
        masterUrl,
        spark.sparkContext().master(),
        "another SparkSession is still active in this JVM");
    spark.sparkContext().addSparkListener(new TaskEnds());
    awaitExecutors(2, true);
    Path checkpoint = LOGS.resolve("checkpoint");
    Files.createDirectories(checkpoint);
    CompressedTensorsCheckpoint.write(
        checkpoint, new QuantizationArgs(QuantScheme.W4A16, true, GROUP, false, DType.F16), mlp, 1);
    Q4Models.register(
        spark,
        MODEL,
        checkpoint.toString(),
        Map.of("layers", "mlp.up_proj,mlp.down_proj", "activation", "relu"));
  }

  @AfterAll
  static void stopCluster() {
    try {
      if (spark != null) {
        Q4Models.unregister(MODEL);
        spark.stop();
      }
    } finally {
      destroyDaemons();
      if (cleanup != null) {
        Runtime.getRuntime().removeShutdownHook(cleanup);
      }
    }
  }

  /** Both executors, again: a replacement for a killed one takes seconds to register. */
  @BeforeEach
  void twoLiveExecutors() throws Exception {
    awaitExecutors(2, false);
  }

  @Test
  @Order(1)
  void twoExecutorsEachInitialiseOnceAndMatchTheScalarReference() throws Exception {
    List<Output> out = run(null);
    Map<Integer, float[]> byId = byId(out);
    float[][] ref = scalarReference();
    for (int r = 0; r < ROWS; r++) {
      float[] g = byId.get(r);
      assertEquals(N, g.length, "row " + r);
      for (int j = 0; j < N; j++) {
        double tol = ATOL + RTOL * Math.abs(ref[r][j]);
        assertTrue(
            Math.abs(g[j] - ref[r][j]) <= tol,
            "row " + r + " output " + j + ": " + g[j] + " vs scalar " + ref[r][j]);
      }
    }
    Map<String, Set<String>> counters = countersByExecutor(out);
    assertEquals(2, counters.size(), "rows came from executors " + counters.keySet());
    counters.forEach(
        (executor, c) ->
            assertEquals(
                Set.of("inits 1, materialisations 1"), c, "counters of executor " + executor));
  }

  @Test
  @Order(2)
  void anExecutorKilledMidJobEndsInARetryAndTheSameOutput() throws Exception {
    Map<Integer, float[]> expected = byId(run(null));
    Path flag = LOGS.resolve("killed-once");
    Files.deleteIfExists(flag);
    int endsBefore = TASK_ENDS.size();

    List<Output> out = run(flag.toString());

    assertTrue(Files.exists(flag), "the killing task did not run");
    // Every row exactly once, with the values of the run without the kill.
    assertEquals(ROWS, out.size(), "rows in the output");
    Map<Integer, float[]> got = byId(out);
    assertEquals(expected.keySet(), got.keySet());
    for (int r = 0; r < ROWS; r++) {
      assertArrayEquals(expected.get(r), got.get(r), "row " + r);
    }
    // The killed attempt failed with its executor lost, and a later attempt succeeded.
    List<SparkListenerTaskEnd> ends =
        awaitTaskEnds(
            endsBefore,
            e ->
                e.reason() == Success$.MODULE$
                    && e.taskInfo().index() == KILLED_PARTITION
                    && e.taskInfo().attemptNumber() > 0);
    List<String> lost =
        ends.stream()
            .filter(e -> e.reason() instanceof ExecutorLostFailure)
            .map(
                e ->
                    "partition "
                        + e.taskInfo().index()
                        + " attempt "
                        + e.taskInfo().attemptNumber())
            .toList();
    assertEquals(
        List.of("partition " + KILLED_PARTITION + " attempt 0"),
        lost,
        "attempts lost with their executor");
    // Whichever executors computed the rows (a replacement among them) did each once.
    countersByExecutor(out)
        .forEach(
            (executor, c) ->
                assertEquals(
                    Set.of("inits 1, materialisations 1"), c, "counters of executor " + executor));
  }

  /** One output row and the counters of the executor that computed it, read there. */
  record Output(int id, float[] values, String executorId, int inits, int materialisations)
      implements Serializable {}

  /**
   * Collects Q4.apply's rows with their executor's counters; with {@code killFlag}, the first
   * attempt of {@link #KILLED_PARTITION} halts its executor after one row (once, the flag file
   * says).
   */
  static final class Report implements FlatMapFunction<Iterator<Row>, Output> {
    private final String killFlag;

    Report(String killFlag) {
      this.killFlag = killFlag;
    }

    @Override
    public Iterator<Output> call(Iterator<Row> rows) throws IOException {
      TaskContext task = TaskContext.get();
      String executor = SparkEnv.get().executorId();
      List<Output> out = new ArrayList<>();
      while (rows.hasNext()) {
        Row row = rows.next();
        if (killFlag != null
            && out.size() == 1
            && task.partitionId() == KILLED_PARTITION
            && task.attemptNumber() == 0
            && new File(killFlag).createNewFile()) {
          Runtime.getRuntime().halt(KILLED_EXIT);
        }
        List<Object> l = row.getList(2);
        float[] v = new float[l.size()];
        for (int i = 0; i < v.length; i++) {
          v[i] = (Float) l.get(i);
        }
        out.add(
            new Output(
                row.getInt(0),
                v,
                executor,
                Q4ExecutorPlugin.initCount(),
                ModelCache.materializations()));
      }
      return out.iterator();
    }
  }

  /** Every task end the driver sees. */
  static final class TaskEnds extends SparkListener {
    @Override
    public void onTaskEnd(SparkListenerTaskEnd taskEnd) {
      TASK_ENDS.add(taskEnd);
    }
  }

  private static List<Output> run(String killFlag) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      // A float[] is a valid external value of array<float> (the encoder takes primitive arrays).
      rows.add(RowFactory.create(i, data[i]));
    }
    // Parallelised rows: no shuffle, so a lost executor loses only its running task.
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    Dataset<Row> df = spark.createDataFrame(jsc.parallelize(rows, PARTITIONS), SCHEMA);
    return Q4.apply(df, MODEL, "features", "out")
        .javaRDD()
        .mapPartitions(new Report(killFlag))
        .collect();
  }

  private static Map<Integer, float[]> byId(List<Output> out) {
    Map<Integer, float[]> byId = new HashMap<>();
    for (Output o : out) {
      if (byId.put(o.id(), o.values()) != null) {
        fail("row " + o.id() + " appears twice");
      }
    }
    assertEquals(ROWS, byId.size(), "distinct rows");
    return byId;
  }

  private static Map<String, Set<String>> countersByExecutor(List<Output> out) {
    return out.stream()
        .collect(
            Collectors.groupingBy(
                Output::executorId,
                TreeMap::new,
                Collectors.mapping(
                    o -> "inits " + o.inits() + ", materialisations " + o.materialisations(),
                    Collectors.toCollection(TreeSet::new))));
  }

  /**
   * The task ends after {@code from}, once one matches {@code last} (listener events arrive
   * asynchronously); fails when none does within the deadline.
   */
  private static List<SparkListenerTaskEnd> awaitTaskEnds(
      int from, Predicate<SparkListenerTaskEnd> last) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(START_SECONDS);
    while (System.nanoTime() < deadline) {
      List<SparkListenerTaskEnd> ends = List.copyOf(TASK_ENDS.subList(from, TASK_ENDS.size()));
      if (ends.stream().anyMatch(last)) {
        return ends;
      }
      Thread.sleep(100);
    }
    return fail("no successful retry of partition " + KILLED_PARTITION + " was reported");
  }

  // ---- the model, its data and the reference ----

  private static void makeModelAndData() {
    Random r = new Random(SEED);
    mlp = List.of(layer("mlp.up_proj", K, HIDDEN, r), layer("mlp.down_proj", HIDDEN, N, r));
    data = new float[ROWS][K];
    for (float[] row : data) {
      for (int i = 0; i < K; i++) {
        row[i] = DType.F16.round((float) r.nextGaussian());
      }
    }
  }

  /** A symmetric (uint4b8) fp16 W4A16 layer with a bias, weights ~ N(0, 1/K). */
  private static QuantizedLinear layer(String name, int k, int n, Random r) {
    float[] w = new float[k * n];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (r.nextGaussian() / Math.sqrt(k));
    }
    Int4WeightQuantizer.Result q = Int4WeightQuantizer.quantize(w, k, n, GROUP, true, DType.F16);
    float[] bias = new float[n];
    for (int i = 0; i < n; i++) {
      bias[i] = DType.F16.round((float) r.nextGaussian() * 0.1f);
    }
    LinearLayerConfig c =
        LinearLayerConfig.of(
            name, k, n, ScalarType.UINT4B8, DType.F16, GROUP, false, false, QuantScheme.W4A16);
    return new QuantizedLinear(
        c,
        PackedInt4Matrix.fromCodes(Int4Layout.K_N8, k, n, q.codes()),
        q.scales(),
        null,
        null,
        bias);
  }

  /** The model run here by the scalar reference kernel, ReLU between the layers. */
  private static float[][] scalarReference() {
    KernelOptions scalar = KernelOptions.defaults().withForced("ScalarW4A16Kernel");
    float[] x = new float[ROWS * K];
    for (int r = 0; r < ROWS; r++) {
      System.arraycopy(data[r], 0, x, r * K, K);
    }
    for (int i = 0; i < mlp.size(); i++) {
      try (Q4Linear l = Q4Linear.create(mlp.get(i), scalar)) {
        x = l.apply(x, ROWS);
      }
      if (i + 1 < mlp.size()) {
        for (int j = 0; j < x.length; j++) {
          x[j] = Math.max(0f, x[j]);
        }
      }
    }
    float[][] out = new float[ROWS][N];
    for (int r = 0; r < ROWS; r++) {
      System.arraycopy(x, r * N, out[r], 0, N);
    }
    return out;
  }

  // ---- the daemons ----

  /** The project's JVM flags (the root pom's q4spark.jvm.flags, passed by surefire). */
  private static List<String> jvmFlags() {
    String flags = System.getProperty("q4spark.jvm.flags");
    if (flags == null || flags.isBlank()) {
      fail(
          "system property q4spark.jvm.flags is not set: run through Maven (jobs/pom.xml sets it)");
    }
    return Arrays.stream(flags.trim().split("\\s+")).toList();
  }

  private static Process launch(
      String name,
      String classPath,
      List<String> flags,
      Map<String, String> env,
      String mainClass,
      String... args)
      throws IOException {
    String java =
        ProcessHandle.current()
            .info()
            .command()
            .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    List<String> command = new ArrayList<>();
    command.add(java);
    command.addAll(flags);
    command.add(DAEMON_HEAP);
    command.add("-cp");
    command.add(classPath);
    command.add(mainClass);
    command.addAll(List.of(args));
    ProcessBuilder pb =
        new ProcessBuilder(command)
            .redirectErrorStream(true)
            .redirectOutput(LOGS.resolve(name + ".log").toFile());
    pb.environment().putAll(env);
    Process p = pb.start();
    DAEMONS.add(p);
    return p;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** Waits for {@code daemon} to listen on {@code port}; skips the tests when it cannot start. */
  private static void awaitPort(Process daemon, String name, int port) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(START_SECONDS);
    while (System.nanoTime() < deadline) {
      cannotStartUnless(daemon.isAlive(), name + " exited with status " + exitStatus(daemon));
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
        return;
      } catch (IOException notYet) {
        Thread.sleep(200);
      }
    }
    cannotStartUnless(
        false, name + " did not listen on 127.0.0.1:" + port + " within the deadline");
  }

  /**
   * Waits until {@code count} executors are registered with the driver, failing naming the logs; a
   * Worker that exits while {@code starting} skips the tests (the cluster cannot start here).
   */
  private static void awaitExecutors(int count, boolean starting) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(START_SECONDS);
    while (System.nanoTime() < deadline) {
      for (int w = 0; w < WORKERS.size(); w++) {
        Process worker = WORKERS.get(w);
        String why = "worker-" + w + " exited with status " + exitStatus(worker);
        if (starting) {
          cannotStartUnless(worker.isAlive(), why);
        } else if (!worker.isAlive()) {
          fail(why + "\n" + tails());
        }
      }
      // The driver is one of the executor infos.
      if (spark.sparkContext().statusTracker().getExecutorInfos().length - 1 >= count) {
        return;
      }
      Thread.sleep(200);
    }
    fail(
        count
            + " executors did not register within "
            + START_SECONDS
            + " s; logs under "
            + LOGS
            + ":\n"
            + tails());
  }

  private static String exitStatus(Process p) {
    return p.isAlive() ? "(running)" : Integer.toString(p.exitValue());
  }

  /**
   * Skips the tests when the cluster cannot start here, or fails when {@code
   * q4spark.cluster.required} says this machine must run them.
   */
  private static void cannotStartUnless(boolean started, String why) {
    if (started) {
      return;
    }
    String message =
        "cannot start a Spark standalone cluster on 127.0.0.1: " + why + "\n" + tails();
    if (Boolean.getBoolean("q4spark.cluster.required")) {
      fail(message);
    }
    Assumptions.abort(message);
  }

  /** The last lines of every log under {@link #LOGS}. */
  private static String tails() {
    try (Stream<Path> files = Files.walk(LOGS)) {
      StringBuilder b = new StringBuilder();
      for (Path f :
          files.filter(f -> f.toString().endsWith(".log") || f.endsWith("stderr")).toList()) {
        List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
        b.append("== ").append(f).append('\n');
        lines
            .subList(Math.max(0, lines.size() - 20), lines.size())
            .forEach(l -> b.append(l).append('\n'));
      }
      return b.toString();
    } catch (IOException | UncheckedIOException e) {
      return "(logs unreadable: " + e + ")";
    }
  }

  /**
   * Stops the daemons, Workers first: SIGTERM lets a Worker kill its executors; what is left after
   * {@link #STOP_SECONDS}, and any process they started, is killed.
   */
  private static void destroyDaemons() {
    List<Process> daemons = new ArrayList<>(DAEMONS);
    Collections.reverse(daemons);
    for (Process p : daemons) {
      List<ProcessHandle> children = p.descendants().toList();
      p.destroy();
      try {
        if (!p.waitFor(STOP_SECONDS, TimeUnit.SECONDS)) {
          p.destroyForcibly().waitFor(STOP_SECONDS, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        p.destroyForcibly();
        Thread.currentThread().interrupt();
      }
      children.forEach(ProcessHandle::destroyForcibly);
      DAEMONS.remove(p);
    }
  }

  private static void deleteRecursively(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
