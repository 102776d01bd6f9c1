/**
 * Target descriptions: QEMU's layout (target.xml including i386-64bit.xml, `rax regnum="0"`,
 * registers commented out), numbering, `g` offsets, and malformed descriptions.
 */
import { describe, expect, it } from 'vitest';
import { RspError } from '../../src/rsp/errors.js';
import { parseTargetXml, resolveTargetDescription } from '../../src/rsp/targetXml.js';

/** QEMU 7.2's target.xml, as `qXfer:features:read:target.xml` returns it. */
const TARGET_XML =
  '<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target><architecture>i386:x86-64</architecture><xi:include href="i386-64bit.xml"/></target>';

/** An abridged i386-64bit.xml in QEMU's shape: flags types, a regnum on rax only, a commented-out block. */
const CORE_XML = `<?xml version="1.0"?>
<!DOCTYPE feature SYSTEM "gdb-target.dtd">
<feature name="org.gnu.gdb.i386.core">
  <flags id="x64_cr0" size="8">
    <field name="PG" start="31" end="31"/>
  </flags>
  <reg name="rax" bitsize="64" type="int64" regnum="0"/>
  <reg name="rbx" bitsize="64" type="int64"/>
  <reg name="rip" bitsize="64" type="code_ptr"/>
  <reg name="eflags" bitsize="32" type="i386_eflags"/>
  <reg name="cs" bitsize="32" type="int32"/>
  <!-- Segment descriptor caches and TLS base MSRs -->
  <!--reg name="cs_base" bitsize="64" type="int64"/>
  <reg name="ss_base" bitsize="64" type="int64"/-->
  <reg name="fs_base" bitsize="64" type="int64"/>
  <reg name="cr3" bitsize="64" type="x64_cr3"/>
  <reg name="st0" bitsize="80" type="i387_ext"/>
  <reg name="xmm0" bitsize="128" type="vec128"/>
  <reg name="mxcsr" bitsize="32" type="i386_mxcsr" group="vector"/>
</feature>`;

function loader(annexes: Record<string, string>): (annex: string) => Promise<string> {
  return async (annex) => {
    const text = annexes[annex];
    if (text === undefined) throw new RspError('E_REPLY', `no annex ${annex}`, 0);
    return text;
  };
}

async function protocolError(p: Promise<unknown>): Promise<RspError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RspError);
  expect((e as RspError).code).toBe('E_PROTOCOL');
  return e as RspError;
}

describe('parseTargetXml', () => {
  it('lists registers and includes in document order, comments stripped', () => {
    expect(parseTargetXml(TARGET_XML)).toEqual({ architecture: 'i386:x86-64', items: [{ kind: 'include', href: 'i386-64bit.xml' }] });
    const core = parseTargetXml(CORE_XML, 'i386-64bit.xml');
    expect(core.items.map((i) => (i.kind === 'reg' ? i.name : `include ${i.href}`))).toEqual([
      'rax',
      'rbx',
      'rip',
      'eflags',
      'cs',
      'fs_base',
      'cr3',
      'st0',
      'xmm0',
      'mxcsr',
    ]);
    expect(core.items[0]).toEqual({ kind: 'reg', name: 'rax', bitsize: 64, regnum: 0, type: 'int64', group: null, feature: 'org.gnu.gdb.i386.core' });
    expect(core.items[9]).toMatchObject({ group: 'vector', regnum: null });
  });

  it('decodes entities, takes single quotes, and defaults the type to int', () => {
    const doc = parseTargetXml(`<feature name='a&amp;b'><reg name='x&#x31;' bitsize='8'/></feature>`);
    expect(doc.items).toEqual([{ kind: 'reg', name: 'x1', bitsize: 8, regnum: null, type: 'int', group: null, feature: 'a&b' }]);
  });

  it('rejects registers without a name or a whole-byte bitsize, and unterminated comments', async () => {
    for (const xml of ['<reg bitsize="64"/>', '<reg name="a"/>', '<reg name="a" bitsize="12"/>', '<reg name="a" bitsize="x"/>', '<!-- <reg', '<xi:include/>']) {
      const e = await protocolError(Promise.resolve().then(() => parseTargetXml(xml, 'bad.xml')));
      expect(e.message).toMatch(/^target description bad\.xml: /);
    }
  });
});

describe('resolveTargetDescription', () => {
  it("numbers QEMU's registers in document order across the include, and lays out g", async () => {
    const d = await resolveTargetDescription(loader({ 'target.xml': TARGET_XML, 'i386-64bit.xml': CORE_XML }));
    expect(d.architecture).toBe('i386:x86-64');
    expect(d.registers.map((r) => [r.name, r.regnum, r.offset])).toEqual([
      ['rax', 0, 0],
      ['rbx', 1, 8],
      ['rip', 2, 16],
      ['eflags', 3, 24],
      ['cs', 4, 28],
      ['fs_base', 5, 32], // the commented-out cs_base/ss_base take no number
      ['cr3', 6, 40],
      ['st0', 7, 48],
      ['xmm0', 8, 58],
      ['mxcsr', 9, 74],
    ]);
    expect(d.gSize).toBe(78);
    expect(d.byName.get('cr3')).toMatchObject({ regnum: 6, bitsize: 64, type: 'x64_cr3', feature: 'org.gnu.gdb.i386.core' });
  });

  it('continues numbering after an explicit regnum, and orders g by number', async () => {
    const xml = `<target><feature name="f">
      <reg name="a" bitsize="32"/>
      <reg name="z" bitsize="16" regnum="10"/>
      <reg name="y" bitsize="8"/>
      <reg name="b" bitsize="64" regnum="3"/>
    </feature></target>`;
    const d = await resolveTargetDescription(loader({ 'target.xml': xml }));
    expect(d.registers.map((r) => [r.name, r.regnum, r.offset])).toEqual([
      ['a', 0, 0],
      ['b', 3, 4],
      ['z', 10, 12],
      ['y', 11, 14],
    ]);
    expect(d.gSize).toBe(15);
  });

  it('rejects include cycles, duplicate numbers and duplicate names', async () => {
    const cyc = await protocolError(resolveTargetDescription(loader({ 'target.xml': '<xi:include href="a.xml"/>', 'a.xml': '<xi:include href="target.xml"/>' })));
    expect(cyc.message).toMatch(/target\.xml -> a\.xml -> target\.xml/);
    await protocolError(resolveTargetDescription(loader({ 'target.xml': '<reg name="a" bitsize="8" regnum="1"/><reg name="b" bitsize="8" regnum="1"/>' })));
    await protocolError(resolveTargetDescription(loader({ 'target.xml': '<reg name="a" bitsize="8"/><reg name="a" bitsize="8"/>' })));
  });

  it('passes the loader errors through', async () => {
    await expect(resolveTargetDescription(loader({ 'target.xml': TARGET_XML }))).rejects.toMatchObject({ code: 'E_REPLY' });
  });
});
