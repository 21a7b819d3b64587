/**
 * Test PKI for the output tests: a CA, a server certificate it signed for 127.0.0.1 / localhost,
 * and a second unrelated CA (to show verification refusing a server). Made with node-forge at
 * test time (keys from node:crypto, which is much faster than forge's pure-JS RSA); nothing on disk.
 */
import { generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';

export interface TestPki {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** A CA that signed nothing here: trusting only it must make the handshake fail. */
  otherCaPem: string;
}

function rsaKeys(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const priv = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { privateKey: priv, publicKey: forge.pki.setRsaPublicKey(priv.n, priv.e), pem };
}

function validity(cert: forge.pki.Certificate, serial: string): void {
  cert.serialNumber = serial;
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
}

function makeCa(cn: string): { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey } {
  const k = rsaKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = k.publicKey;
  validity(cert, '01');
  const name = [{ name: 'commonName', value: cn }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(k.privateKey, forge.md.sha256.create());
  return { cert, key: k.privateKey };
}

let cached: TestPki | undefined;

export function testPki(): TestPki {
  if (cached !== undefined) return cached;
  const ca = makeCa('Hark test CA');
  const other = makeCa('Unrelated test CA');
  const k = rsaKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = k.publicKey;
  validity(cert, '02');
  cert.setSubject([{ name: 'commonName', value: 'localhost' }]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  cached = {
    caPem: forge.pki.certificateToPem(ca.cert),
    certPem: forge.pki.certificateToPem(cert),
    keyPem: k.pem,
    otherCaPem: forge.pki.certificateToPem(other.cert),
  };
  return cached;
}
