/**
 * The portal's one stylesheet and one script, served from /static/ so the CSP can forbid inline
 * code. The script only adds conveniences (file import into a textarea, confirm before sensor
 * restart / reset); every page works without it. Input: none. Output: text constants.
 */

export const PORTAL_CSS = `
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;color:#1b1f24;background:#f5f6f8}
header{display:flex;align-items:center;gap:16px;background:#22313f;color:#fff;padding:8px 16px}
header a{color:#dfe7ef;text-decoration:none}header a.active,header a:hover{color:#fff;text-decoration:underline}
.brand{font-weight:700;font-size:18px;color:#fff}nav{display:flex;gap:14px;flex:1}.who{margin-left:auto;display:flex;gap:8px;align-items:center}
main{padding:16px 24px;max-width:1400px}h1{font-size:20px;margin:8px 0 12px}h2{font-size:16px;margin-top:24px}
table{border-collapse:collapse;background:#fff;width:100%}th,td{border-bottom:1px solid #e3e6ea;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}tr:hover td{background:#fafbfc}
.filters{display:flex;flex-wrap:wrap;gap:8px 12px;background:#fff;padding:10px;border:1px solid #e3e6ea;margin-bottom:10px}
.filters label{display:flex;flex-direction:column;font-size:12px;color:#555}input,select,textarea,button{font:inherit;padding:3px 6px}
button{background:#2f6fab;color:#fff;border:0;border-radius:3px;padding:5px 12px;cursor:pointer}button.danger{background:#b3261e}
.sev{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px;color:#fff;background:#777}
.sev5{background:#8e0000}.sev4{background:#d32f2f}.sev3{background:#ef6c00}.sev2{background:#9e9d24}.sev1{background:#607d8b}
.status{font-size:12px;padding:0 6px;border-radius:3px;background:#e0e0e0}.st-escalated{background:#ffcdd2}.st-closed{background:#c8e6c9}.st-false_positive{background:#d7ccc8}
mark{background:#ffeb3b;padding:0 1px}.context{background:#fff;border-left:4px solid #2f6fab;padding:10px 14px;margin:0 0 12px;font-size:15px;white-space:pre-wrap;word-break:break-word}
.facts{display:grid;grid-template-columns:160px 1fr;gap:4px 12px;background:#fff;padding:10px;border:1px solid #e3e6ea}.facts dt{color:#555}.facts dd{margin:0;word-break:break-all}
.src{color:#777;font-size:12px}.neighbours{display:flex;justify-content:space-between;margin:10px 0}
.evidence img{border:1px solid #ccc;max-width:100%;height:auto;background:#fff}.unavailable{color:#8a4b00}.pager{display:flex;gap:8px;margin:10px 0}
.triage{display:flex;gap:12px;align-items:flex-end;flex-wrap:wrap}.triage textarea{width:420px}.notes li{margin:4px 0}.when{color:#777;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:16px}.card{background:#fff;border:1px solid #e3e6ea;padding:12px;min-width:320px}
.advice{background:#fff8e1;border-left:4px solid #f9a825;padding:6px 10px;margin:4px 0}.bad{color:#b3261e;font-weight:600}.good{color:#2e7d32}
.login{max-width:360px;margin:60px auto;background:#fff;padding:24px;border:1px solid #e3e6ea}.login label{display:block;margin:8px 0}.login input{width:100%}
.error{background:#ffebee;border-left:4px solid #b3261e;padding:8px 12px}.empty{color:#777}.readonly-note{color:#555;font-style:italic}
.inline{display:inline}.chart text{font-size:11px;fill:#333}pre.dict{background:#fff;border:1px solid #ddd;padding:8px;max-height:300px;overflow:auto}
@media print{header,.filters,.no-print{display:none}main{padding:0}}
`;

export const PORTAL_JS = `
document.addEventListener('DOMContentLoaded', () => {
  for (const input of document.querySelectorAll('input[type=file][data-into]')) {
    input.addEventListener('change', () => {
      const file = input.files && input.files[0];
      const target = document.getElementById(input.getAttribute('data-into'));
      if (file && target) file.text().then((t) => { target.value = t; });
    });
  }
  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (e) => { if (!window.confirm(form.getAttribute('data-confirm'))) e.preventDefault(); });
  }
});
`;
