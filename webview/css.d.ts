// scripts/build.mjs loads .css files as text (`loader: { '.css': 'text' }`); the bundles adopt them as stylesheets.
declare module '*.css' {
  const text: string;
  export default text;
}
