/** `.proto` files imported as text (`with { type: "text" }`): Bun embeds them in the bundle and the compiled binary. */
declare module "*.proto" {
  const text: string;
  export default text;
}
