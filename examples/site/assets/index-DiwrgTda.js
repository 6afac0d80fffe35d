(function(){const l=document.createElement("link").relList;if(l&&l.supports&&l.supports("modulepreload"))return;for(const e of document.querySelectorAll('link[rel="modulepreload"]'))r(e);function r(e){if(e.ep)return;e.ep=!0;fetch(e.href,{credentials:"same-origin"})}})();
const n=new URL("/assets/add-CqL7x9Tz.wasm",import.meta.url).href;
async function a(){try{const t=await fetch(n),{instance:s}=WebAssembly.instantiateStreaming?await WebAssembly.instantiateStreaming(t):await WebAssembly.instantiate(await t.arrayBuffer());return s.exports}catch(t){return console.warn("wasm unavailable",t),{add:(s,o)=>s+o}}}
function c(){for(const t of document.querySelectorAll("nav a")){const s=new URL(t.href,location.href);s.pathname===location.pathname?t.setAttribute("aria-current","page"):t.removeAttribute("aria-current")}}
a().then(t=>{const s=document.getElementById("sum");s&&(s.textContent=String(t.add(2,3)))});c();
