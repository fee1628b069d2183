package io.q4spark.jobs.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class QuantilesTest {
  private static final double EXACT = 1e-12;

  @Test
  void interpolatesBetweenOrderStatisticsLikeNumPy() {
    // numpy.quantile([5, 1, 4, 2, 3], [0, .1, .5, .9, 1]) = [1, 1.4, 3, 4.6, 5]
    Quantiles q = new Quantiles(new double[] {5, 1, 4, 2, 3});
    assertEquals(1, q.at(0), EXACT);
    assertEquals(1.4, q.at(0.1), EXACT);
    assertEquals(3, q.median(), EXACT);
    assertEquals(4.6, q.at(0.9), EXACT);
    assertEquals(5, q.at(1), EXACT);
    assertEquals(1, q.min(), EXACT);
    assertEquals(5, q.max(), EXACT);
    assertEquals(5, q.count());
  }

  @Test
  void evenCountsAndSingleValues() {
    // numpy.quantile([10, 20, 30, 40], [.1, .5, .9]) = [13, 25, 37]
    Quantiles q = new Quantiles(new double[] {40, 10, 30, 20});
    assertEquals(13, q.at(0.1), EXACT);
    assertEquals(25, q.median(), EXACT);
    assertEquals(37, q.at(0.9), EXACT);
    Quantiles one = new Quantiles(new double[] {7});
    assertEquals(7, one.at(0.1), EXACT);
    assertEquals(7, one.median(), EXACT);
    assertEquals(7, one.at(0.9), EXACT);
  }

  @Test
  void doesNotChangeTheCallersArray() {
    double[] values = {3, 1, 2};
    new Quantiles(values).median();
    assertEquals(3, values[0], EXACT);
  }

  @Test
  void rejectsEmptySamplesNaNAndBadLevels() {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> new Quantiles(new double[0]));
    assertEquals("quantiles of an empty sample", e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class, () -> new Quantiles(new double[] {1, Double.NaN}));
    assertEquals("quantiles of a sample holding NaN", e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> new Quantiles(new double[] {1}).at(1.5));
    assertTrue(e.getMessage().contains("must be in [0, 1], but was 1.5"), e.getMessage());
  }
}
