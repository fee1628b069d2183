package io.q4spark.spark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.spark.TestSessions;
import io.q4spark.spark.plugin.Q4Executor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Registering models on local[2]: read once, broadcast once, materialised once per executor. */
class Q4ModelsTest {
  private static final long SEED = 11;
  private static final int GROUP = 32;

  @TempDir static Path tmp;
  private static SparkSession spark;
  private static Path mlp;
  private static Path gptq;

  @BeforeAll
  static void start() {
    Random r = new Random(SEED);
    QuantizedLinear up = TestModels.layer("mlp.up_proj", 64, 96, GROUP, DType.F16, true, r);
    QuantizedLinear down = TestModels.layer("mlp.down_proj", 96, 32, GROUP, DType.F16, true, r);
    mlp = tmp.resolve("mlp");
    TestModels.writeCompressedTensors(mlp, List.of(up, down), GROUP, DType.F16);
    gptq = tmp.resolve("gptq");
    TestModels.writeGptq(
        gptq,
        List.of(TestModels.layer("proj", 64, 16, GROUP, DType.F16, false, r)),
        GROUP,
        DType.F16);
    spark = TestSessions.local("Q4ModelsTest", Map.of());
  }

  @AfterAll
  static void stop() {
    spark.stop();
  }

  private static ModelHandle registerMlp(String name) {
    return Q4Models.register(
        spark,
        name,
        mlp.toString(),
        Map.of("layers", "mlp.up_proj,mlp.down_proj", "activation", "relu"));
  }

  @Test
  void aStackIsReadInTheGivenOrderWithItsActivations() {
    ModelHandle h = registerMlp("stack");
    assertEquals(64, h.k());
    assertEquals(32, h.n());
    assertEquals(
        List.of(
            "mlp.up_proj W4A16 K=64 N=96 weight=uint4b8 act=float16 group=32 +bias -> relu",
            "mlp.down_proj W4A16 K=96 N=32 weight=uint4b8 act=float16 group=32 +bias"),
        h.layers());
    Q4Models.unregister("stack");
  }

  @Test
  void gptqIsDetected() {
    ModelHandle h = Q4Models.register(spark, "gptq", gptq.toString(), Map.of());
    assertEquals(
        List.of("proj W4A16 K=64 N=16 weight=uint4 act=float16 group=32 zero-points +bias"),
        h.layers());
    Q4Models.unregister("gptq");
  }

  @Test
  void layersThatDoNotChainAreRefusedNamingThem() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Q4Models.register(spark, "bad", mlp.toString(), Map.of()));
    assertEquals(
        "model 'bad': layer mlp.down_proj gives N=32 outputs but the next layer mlp.up_proj takes"
            + " K=64 inputs; consecutive layers must chain (the layers option chooses and orders"
            + " them)",
        e.getMessage());
  }

  @Test
  void unknownLayerOptionAndActivationAreNamed() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Q4Models.register(spark, "m", mlp.toString(), Map.of("layers", "mlp.gate")));
    assertEquals(
        "model 'm': layer mlp.gate is not in "
            + mlp
            + "; its layers are [mlp.down_proj, mlp.up_proj]",
        e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Q4Models.register(spark, "m", mlp.toString(), Map.of("layer", "x")));
    assertEquals(
        "model 'm': unknown option 'layer', expected one of [activation, activations, format,"
            + " layers]",
        e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                Q4Models.register(
                    spark,
                    "m",
                    mlp.toString(),
                    Map.of("layers", "mlp.down_proj", "activations", "tanh")));
    assertEquals(
        "model 'm': unknown activation 'tanh', expected one of [none, relu, gelu, silu]",
        e.getMessage());
  }

  @Test
  void unknownModelNameListsTheRegisteredOnes() {
    registerMlp("known");
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Q4Models.get("unknown"));
    assertEquals(
        "no model named 'unknown' is registered; registered models: [known] (Q4Models.register"
            + " adds one)",
        e.getMessage());
    Q4Models.unregister("known");
  }

  @Test
  void executorsFreeModelsTheDriverNoLongerHas() {
    ModelHandle live = registerMlp("live");
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    // A model the driver's registry does not hold, as a remote executor sees an unregistered one.
    ModelHandle gone =
        new ModelHandle(
            "gone",
            live.k(),
            live.n(),
            live.layers(),
            jsc.broadcast(
                ModelCodec.encode(
                    ModelCodec.decode(live.weights().value()), ModelCodec.DEFAULT_CHUNK_BYTES)));
    ModelCache cache = Q4Executor.current().models();
    cache.acquire(live).release();
    LoadedModel g = cache.acquire(gone);
    Q4Executor.current().syncModels();
    assertTrue(cache.contains(live.broadcastId()));
    assertFalse(cache.contains(gone.broadcastId()));
    assertFalse(g.isClosed(), "a model in use stays open until released");
    g.release();
    assertTrue(g.isClosed());
    Q4Models.unregister("live");
    gone.weights().destroy();
  }

  @Test
  void executorLoadedModelsAreNotBroadcastAndGiveTheSameResults() {
    int broadcasts = Q4Models.broadcasts();
    int materialised = ModelCache.materializations();
    ModelHandle broadcast = registerMlp("via-broadcast");
    ModelHandle local =
        Q4Models.register(
            spark,
            "via-executor",
            mlp.toString(),
            Map.of(
                "layers", "mlp.up_proj,mlp.down_proj", "activation", "relu", "load", "executor"));
    assertEquals(1, Q4Models.broadcasts() - broadcasts, "only the broadcast model is broadcast");
    assertTrue(local.loadedByExecutors());
    assertTrue(local.broadcastId() < 0);
    assertEquals(broadcast.layers(), local.layers());
    float[] x = new float[3 * local.k()];
    Random r = new Random(SEED + 9);
    for (int i = 0; i < x.length; i++) {
      x[i] = DType.F16.round((float) r.nextGaussian());
    }
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    List<float[]> outs =
        jsc.parallelize(List.of(broadcast, local), 2)
            .map(
                h -> {
                  LoadedModel m = Q4Executor.current().models().acquire(h);
                  try {
                    return m.forward(x, 3);
                  } finally {
                    m.release();
                  }
                })
            .collect();
    assertArrayEquals(outs.get(0), outs.get(1));
    assertEquals(2, ModelCache.materializations() - materialised);
    assertTrue(Q4Models.unregister("via-executor"));
    assertFalse(Q4Executor.current().models().contains(local.broadcastId()));
    assertTrue(Q4Models.unregister("via-broadcast"));

    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> Q4Models.register(spark, "bad", mlp.toString(), Map.of("load", "lazily")));
    assertEquals(
        "model 'bad': The value of option load should be broadcast or executor, but was lazily",
        e.getMessage());
  }

  @Test
  void broadcastOnceMaterialisedOncePerExecutorFreedOnUnregister() {
    int broadcasts = Q4Models.broadcasts();
    int materialised = ModelCache.materializations();
    ModelHandle h = registerMlp("once");
    assertEquals(1, Q4Models.broadcasts() - broadcasts);
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    for (int job = 0; job < 3; job++) {
      long used =
          jsc.parallelize(List.of(1, 2, 3, 4, 5, 6, 7, 8), 8)
              .mapPartitions(
                  it -> {
                    LoadedModel m = Q4Executor.current().models().acquire(h);
                    try {
                      return List.of(m.k()).iterator();
                    } finally {
                      m.release();
                    }
                  })
              .count();
      assertEquals(8, used);
    }
    assertEquals(1, Q4Models.broadcasts() - broadcasts, "no broadcast per job");
    assertEquals(1, ModelCache.materializations() - materialised, "one executor (local mode)");
    LoadedModel m = Q4Executor.current().models().acquire(h);
    m.release();
    assertTrue(Q4Models.unregister("once"));
    assertFalse(Q4Executor.current().models().contains(h.broadcastId()));
    assertTrue(m.isClosed());
    assertFalse(Q4Models.unregister("once"));
  }
}
