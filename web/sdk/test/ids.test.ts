import { describe, expect, it } from "vitest";
import { backoffDelay, compareIds, isId, maxId } from "../src/index.js";

describe("compareIds", () => {
  it("orders ids numerically, beyond Number's precision", () => {
    const cases: Array<[string, string, number]> = [
      ["9", "10", -1],
      ["10", "9", 1],
      ["123", "123", 0],
      ["9007199254740993", "9007199254740992", 1], // equal as Numbers
      ["9223372036854775807", "9223372036854775806", 1],
      ["99", "100", -1],
    ];
    for (const [a, b, want] of cases) {
      expect(Math.sign(compareIds(a, b)), `${a} vs ${b}`).toBe(want);
    }
    expect(["10", "9", "100", "11"].sort(compareIds)).toEqual(["9", "10", "11", "100"]);
  });

  it("maxId ignores undefined", () => {
    expect(maxId(undefined, undefined)).toBeUndefined();
    expect(maxId("5", undefined)).toBe("5");
    expect(maxId(undefined, "5")).toBe("5");
    expect(maxId("99", "100")).toBe("100");
  });

  it("isId accepts the protocol's id shape only", () => {
    expect(["1", "42", "9223372036854775807"].every(isId)).toBe(true);
    expect(["0", "007", "abc", "", "-1", "1.5", 5, null].some(isId)).toBe(false);
  });
});

describe("backoffDelay", () => {
  it("grows exponentially to the cap, jittered within the upper half", () => {
    const opts = { initialMs: 100, maxMs: 1000, factor: 2 };
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, opts, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, opts, () => 0.999999))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it("defaults to 0.5 s doubling up to 30 s", () => {
    expect(backoffDelay(0, {}, () => 1)).toBe(500);
    expect(backoffDelay(20, {}, () => 1)).toBe(30_000);
  });
});
