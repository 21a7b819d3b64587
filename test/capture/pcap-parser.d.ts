/**
 * Types for the `pcap-parser` npm package (CommonJS, ships none), used only as a test oracle by
 * file-reader.test.ts. Import as `import pcapParser from 'pcap-parser'` (module.exports is the default).
 */
declare module 'pcap-parser' {
  import type { EventEmitter } from 'node:events';
  import type { Readable } from 'node:stream';

  namespace pcapParser {
    interface GlobalHeader {
      magicNumber: number;
      majorVersion: number;
      minorVersion: number;
      gmtOffset: number;
      timestampAccuracy: number;
      snapshotLength: number;
      linkLayerType: number;
    }
    interface PacketHeader {
      timestampSeconds: number;
      timestampMicroseconds: number;
      capturedLength: number;
      originalLength: number;
    }
    interface Packet {
      header: PacketHeader;
      data: Buffer;
    }
    /** Emits 'globalHeader', 'packetHeader', 'packetData', 'packet', 'end' and 'error'. */
    type Parser = EventEmitter;
    function parse(input: string | Readable): Parser;
  }
  export = pcapParser;
}
