// Kubernetes quantities: the forms manifests use, the strings that are not quantities, and the
// millicore rounding the kubelet applies before it uses a cpu value.
import t from 'tap';
import { milliCpu, parseQuantity } from '../../src/manifest/quantity.js';

t.test('parses the forms manifests use', async (t) => {
  const cases: [string | number, number][] = [
    ['500m', 0.5],
    ['1.5', 1.5],
    ['128Mi', 128 * 1024 * 1024],
    ['1G', 1_000_000_000],
    ['1e3', 1000],
    ['1E3', 1000],
    ['1e-3', 0.001],
    ['2', 2],
    ['.5', 0.5],
    ['1Ki', 1024],
    ['64Gi', 64 * 2 ** 30],
    ['1k', 1000],
    ['1M', 1_000_000],
    ['+1', 1],
    [1.5, 1.5],
    [0, 0],
  ];
  for (const [input, expected] of cases) t.equal(parseQuantity(input), expected, `${JSON.stringify(input)} → ${expected}`);
});

t.test('anything else is not a quantity', async (t) => {
  for (const input of ['12XB', ' 1', '1 ', '', 'abc', 'e3', '1ki', '1mi', '1 Mi', 'Mi', '1.2.3', '0x10', '--1']) {
    t.equal(parseQuantity(input), undefined, JSON.stringify(input));
    t.equal(milliCpu(input), undefined, `milliCpu(${JSON.stringify(input)})`);
  }
  t.equal(parseQuantity(Number.NaN), undefined, 'NaN');
  t.equal(parseQuantity(Number.POSITIVE_INFINITY), undefined, 'Infinity');
});

t.test('milliCpu rounds up to whole millicores', async (t) => {
  const cases: [string | number, number][] = [
    ['500m', 500],
    ['1', 1000],
    ['1.5', 1500],
    ['0.1', 100],
    ['1m', 1],
    ['0.5m', 1],
    ['100u', 1],
    ['1n', 1],
    ['1.0001', 1001],
    ['0.0001', 1],
    ['250m', 250],
    [2, 2000],
    [0, 0],
  ];
  for (const [input, expected] of cases) t.equal(milliCpu(input), expected, `${JSON.stringify(input)} → ${expected}m`);
});
