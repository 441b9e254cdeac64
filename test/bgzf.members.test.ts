/**
 * One BGZF member checked on its own (lib/format/bgzf.ts): what inflateMember and memberPieces
 * refuse as damage (too short, an ISIZE no member can hold, an empty member with a wrong CRC, a
 * text longer than its ISIZE), and that they agree on an intact member.
 */
import t from 'tap';
import { BGZF_EOF, BGZF_MAX_MEMBER_TEXT, bgzfMemberSync, inflateMember, inflateMemberPieces, memberPieces } from '../lib/format/bgzf.js';

async function pieces(member: Buffer): Promise<{ text: Buffer; ok: boolean }> {
  const got: Buffer[] = [];
  const ok = await inflateMemberPieces(member, (p) => got.push(p), 1024);
  return { text: Buffer.concat(got), ok };
}

t.test('an intact member: the same text whole and in pieces; the EOF member is empty', async (t) => {
  const text = Buffer.from('{"$step":1}\n'.repeat(500));
  const member = bgzfMemberSync(text, 1);
  t.same(inflateMember(member), text);
  t.same(await pieces(member), { text, ok: true });
  t.same(inflateMember(BGZF_EOF), Buffer.alloc(0));
});

t.test('damage: too short, an ISIZE past what a member can hold, a lying ISIZE, an empty member with a wrong CRC', async (t) => {
  const member = bgzfMemberSync(Buffer.from('row\n'.repeat(100)), 1);
  t.equal(inflateMember(member.subarray(0, 20)), undefined, 'shorter than a header and trailer');
  t.same(await pieces(member.subarray(0, 20)), { text: Buffer.alloc(0), ok: false });

  const huge = Buffer.from(member);
  huge.writeUInt32LE(BGZF_MAX_MEMBER_TEXT + 1, huge.length - 4);
  t.equal(inflateMember(huge), undefined, 'an ISIZE no 64 KiB member can hold');
  t.same(await pieces(huge), { text: Buffer.alloc(0), ok: false });

  const lying = Buffer.from(member);
  lying.writeUInt32LE(10, lying.length - 4);
  t.equal(inflateMember(lying), undefined, 'more text than its ISIZE says');
  t.equal((await pieces(lying)).ok, false);

  const empty = Buffer.from(BGZF_EOF);
  empty.writeUInt32LE(1, empty.length - 8);
  t.equal(inflateMember(empty), undefined, 'an empty member whose CRC is not 0');

  const emptyOther = bgzfMemberSync(Buffer.alloc(0), 6);
  t.same(inflateMember(emptyOther), Buffer.alloc(0), 'an empty member that is not the EOF bytes but is intact');

  const bad = Buffer.from(member);
  bad[30] = (bad[30] as number) ^ 0xff;
  t.equal(inflateMember(bad), undefined, 'bad deflate data');
  t.equal((await pieces(bad)).ok, false);
  const gen = memberPieces(bad);
  let r = await gen.next();
  while (r.done !== true) r = await gen.next();
  t.equal(r.value, false, 'the generator says so at its end');
});
